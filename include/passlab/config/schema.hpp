#pragma once
// The declarative schema behind config.hpp: one FieldSpec per key says its section, type,
// default (from the default-constructed Config), allowed values, documentation, and whether it
// belongs to a run's identity. Parsing, validation, canonical output, run ids and
// docs/config.md are all driven from this one table.
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "passlab/config/config.hpp"

namespace passlab::config {

enum class Kind { boolean, integer, real, string, int_list, real_list, string_list, filter_list };
const char* to_string(Kind k);

using Value = std::variant<bool, int64_t, double, std::string, std::vector<int64_t>, std::vector<double>,
                           std::vector<std::string>, std::vector<SweepFilter>>;

struct FieldSpec {
  std::string section;
  std::string key;
  Kind kind;
  std::string doc;
  // Numeric range (applies to numbers and to each list element).
  std::optional<double> min, max;
  bool min_exclusive = false, max_exclusive = false;
  // Allowed strings (applies to strings and to each element of string lists); empty: any.
  std::vector<std::string> choices;
  // In which identity scopes the key takes part (see Scope).
  bool in_run = true;
  bool in_dense = false;
  // A key added after ids were in use: it enters the run and dense ids only when it differs from
  // its default, so configs that leave it at the default (and files written before it existed)
  // keep their ids.
  bool id_when_set = false;
  std::function<Value(const Config&)> get;
  std::function<void(Config&, const Value&)> set;

  std::string path() const { return section + "." + key; }
  std::string allowed() const;  // human text: "integer >= 1", "one of \"sgd\", \"adam\"", ...
};

struct SectionSpec {
  std::string name;
  std::string doc;
};

const std::vector<SectionSpec>& sections();
const std::vector<FieldSpec>& fields();
const FieldSpec* find_field(const std::string& section, const std::string& key);

// Markdown reference of every key: type, default, allowed values, meaning. docs/config.md is
// this output (a test keeps them equal).
std::string schema_markdown();

// Value formatting as canonical TOML.
std::string format_value(const Value& v);

// Closest candidate within a small edit distance, for "did you mean" hints.
std::optional<std::string> suggest(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace passlab::config
