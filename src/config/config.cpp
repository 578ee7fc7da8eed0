#include "passlab/config/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "passlab/config/schema.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/rng.hpp"

namespace passlab::config {
namespace {

std::vector<std::string> section_names() {
  std::vector<std::string> v;
  for (auto& s : sections()) v.push_back(s.name);
  return v;
}

std::vector<std::string> keys_of(const std::string& section) {
  std::vector<std::string> v;
  for (auto& f : fields())
    if (f.section == section) v.push_back(f.key);
  return v;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

// The value as canonical TOML (strings double-quoted, floats shortest round-trip).
std::string repr(const toml::node& n) {
  std::string s;
  if (n.is_table()) {
    s = "{...}";
  } else if (auto* a = n.as_array()) {
    s = "[";
    for (size_t i = 0; i < a->size(); ++i) s += (i ? ", " : "") + repr(*a->get(i));
    s += "]";
  } else if (n.is_string()) {
    s = format_value(Value(std::string(n.as_string()->get())));
  } else if (n.is_integer()) {
    s = std::to_string(n.as_integer()->get());
  } else if (n.is_floating_point()) {
    s = format_value(Value(n.as_floating_point()->get()));
  } else if (n.is_boolean()) {
    s = n.as_boolean()->get() ? "true" : "false";
  } else {
    std::ostringstream o;
    n.visit([&](auto&& v) { o << v; });
    s = o.str();
  }
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::date: return "date";
    case toml::node_type::time: return "time";
    case toml::node_type::date_time: return "date-time";
    default: return "nothing";
  }
}

// Parses one TOML document and turns it into a validated Config.
class Loader {
 public:
  Loader(std::string source) : source_(std::move(source)) {}

  Config load(const std::string& text, const std::vector<std::string>& overrides) {
    toml::table tbl;
    try {
      tbl = toml::parse(std::string_view(text), std::string(source_));
    } catch (const toml::parse_error& e) {
      auto b = e.source().begin;
      throw ConfigError(source_ + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) +
                        ": TOML syntax error: " + std::string(e.description()));
    }
    for (auto& ov : overrides) apply_override(tbl, ov);
    return from_table(tbl);
  }

 private:
  std::string source_;
  std::map<std::string, std::string> override_src_;  // key path -> "--set ..." text
  std::map<std::string, std::string> locations_;     // key path -> where it was set

  std::string loc(const std::string& path, const toml::node& n) const {
    auto it = override_src_.find(path);
    if (it != override_src_.end()) return "--set " + it->second;
    auto b = n.source().begin;
    if (b.line == 0) return source_;
    return source_ + ":" + std::to_string(b.line) + ":" + std::to_string(b.column);
  }
  std::string loc_of(const std::string& path) const {
    auto it = locations_.find(path);
    return it != locations_.end() ? it->second : source_;
  }

  void apply_override(toml::table& tbl, const std::string& ov) {
    auto eq = ov.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError("--set " + ov + ": expected section.key=value (e.g. --set dense.lr=0.05)");
    std::string path = ov.substr(0, eq), value = ov.substr(eq + 1);
    // One option, one assignment: the value is parsed as "v = <value>", so a line break would let
    // it carry more keys that were silently dropped.
    if (value.find_first_of("\n\r") != std::string::npos)
      throw ConfigError("--set " + ov + ": the value spans more than one line; give one section.key=value per --set");
    auto dot = path.find('.');
    if (dot == std::string::npos || path.find('.', dot + 1) != std::string::npos)
      throw ConfigError("--set " + ov + ": key must be section.key, got '" + path + "'");
    std::string section = path.substr(0, dot), key = path.substr(dot + 1);
    toml::table parsed;
    bool ok = true;
    try {
      parsed = toml::parse(std::string_view("v = " + value), std::string("--set"));
    } catch (const toml::parse_error&) {
      ok = false;
    }
    if (!tbl.contains(section)) tbl.insert(section, toml::table{});
    toml::table* sec = tbl[section].as_table();
    if (!sec) throw ConfigError("--set " + ov + ": '" + section + "' is not a table in " + source_);
    if (ok && parsed.size() != 1)
      throw ConfigError("--set " + ov + ": the value holds more than one TOML key; give one section.key=value per --set");
    if (ok && parsed.contains("v")) {
      sec->insert_or_assign(key, *parsed.get("v"));
    } else {
      sec->insert_or_assign(key, value);  // a bare word is a string
    }
    override_src_[path] = ov;
  }

  [[noreturn]] void fail(const std::string& where, const std::string& msg) const { throw ConfigError(where + ": " + msg); }

  Config from_table(const toml::table& tbl) {
    Config c;
    c.source = source_;
    for (auto&& [k, node] : tbl) {
      std::string section(k.str());
      bool known = false;
      for (auto& s : sections()) known |= s.name == section;
      if (!known) {
        auto hint = suggest(section, section_names());
        fail(loc(section, node), "unknown section [" + section + "]" + (hint ? "; did you mean [" + *hint + "]?" : "") +
                                     " Allowed sections: " + join(section_names()));
      }
      const toml::table* st = node.as_table();
      if (!st) fail(loc(section, node), "'" + section + "' must be a table ([" + section + "]), got " + type_name(node));
      for (auto&& [k2, n2] : *st) {
        std::string key(k2.str());
        std::string path = section + "." + key;
        const FieldSpec* f = find_field(section, key);
        if (!f) {
          auto hint = suggest(key, keys_of(section));
          fail(loc(path, n2), "unknown key '" + path + "'" + (hint ? "; did you mean '" + section + "." + *hint + "'?" : "") +
                                  " Allowed keys in [" + section + "]: " + join(keys_of(section)));
        }
        locations_[path] = loc(path, n2);
        f->set(c, convert(*f, n2));
      }
    }
    cross_check(c);
    return c;
  }

  [[noreturn]] void bad_type(const FieldSpec& f, const toml::node& n, const std::string& what = "") const {
    fail(loc(f.path(), n), f.path() + " = " + repr(n) + " has the wrong type (" + (what.empty() ? type_name(n) : what) +
                               "); allowed: " + f.allowed());
  }

  void check_range(const FieldSpec& f, const toml::node& whole, double x, const std::string& shown) const {
    // inf passes an open upper bound and nan every comparison: no key means either.
    if (!std::isfinite(x)) fail(loc(f.path(), whole), f.path() + " = " + shown + " is not finite; allowed: " + f.allowed());
    bool bad = (f.min && (f.min_exclusive ? x <= *f.min : x < *f.min)) || (f.max && (f.max_exclusive ? x >= *f.max : x > *f.max));
    if (bad) fail(loc(f.path(), whole), f.path() + " = " + shown + " is out of range; allowed: " + f.allowed());
  }

  void check_choice(const FieldSpec& f, const toml::node& whole, const std::string& s) const {
    if (f.choices.empty() || std::find(f.choices.begin(), f.choices.end(), s) != f.choices.end()) return;
    auto hint = suggest(s, f.choices);
    fail(loc(f.path(), whole), f.path() + " = \"" + s + "\" is not allowed; allowed: " + f.allowed() +
                                   (hint ? "; did you mean \"" + *hint + "\"?" : ""));
  }

  double number(const FieldSpec& f, const toml::node& whole, const toml::node& n) const {
    if (n.is_integer()) return static_cast<double>(n.as_integer()->get());
    if (n.is_floating_point()) return n.as_floating_point()->get();
    bad_type(f, whole, std::string(type_name(n)) + (whole.is_array() ? " element" : ""));
  }

  int64_t integer(const FieldSpec& f, const toml::node& whole, const toml::node& n) const {
    if (!n.is_integer()) bad_type(f, whole, std::string(type_name(n)) + (whole.is_array() ? " element" : ""));
    int64_t x = n.as_integer()->get();
    check_range(f, whole, static_cast<double>(x), std::to_string(x));
    return x;
  }

  SweepFilter filter(const FieldSpec& f, const toml::node& whole, const toml::node& n) const {
    const toml::table* t = n.as_table();
    if (!t) bad_type(f, whole, std::string(type_name(n)) + " element");
    SweepFilter sf;
    static const std::vector<std::string> keys = {"arch", "dataset", "method", "budget", "seed"};
    for (auto&& kv : *t) {  // no structured bindings: clang 14 cannot capture them in lambdas
      const toml::node& v = kv.second;
      std::string key(kv.first.str());
      auto want_string = [&](const std::vector<std::string>& allowed) -> std::string {
        if (!v.is_string()) fail(loc(f.path(), v), f.path() + ": '" + key + "' must be a string, got " + type_name(v));
        std::string s = v.as_string()->get();
        if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
          auto hint = suggest(s, allowed);
          fail(loc(f.path(), v), f.path() + ": " + key + " = \"" + s + "\" is not allowed; allowed: one of " + join(allowed) +
                                     (hint ? "; did you mean \"" + *hint + "\"?" : ""));
        }
        return s;
      };
      if (key == "arch") sf.arch = want_string(known_archs());
      else if (key == "dataset") sf.dataset = want_string({});
      else if (key == "method") sf.method = want_string(known_methods());
      else if (key == "budget") {
        double b = v.is_integer() ? double(v.as_integer()->get()) : v.is_floating_point() ? v.as_floating_point()->get() : -1;
        if (!(b > 0 && b <= 1)) fail(loc(f.path(), v), f.path() + ": budget = " + repr(v) + " is not allowed; allowed: float > 0.0 and <= 1.0");
        sf.budget = b;
      } else if (key == "seed") {
        if (!v.is_integer() || v.as_integer()->get() < 0)
          fail(loc(f.path(), v), f.path() + ": seed = " + repr(v) + " is not allowed; allowed: integer >= 0");
        sf.seed = v.as_integer()->get();
      } else {
        auto hint = suggest(key, keys);
        fail(loc(f.path(), v), f.path() + ": unknown filter key '" + key + "'" + (hint ? "; did you mean '" + *hint + "'?" : "") +
                                   " Allowed: " + join(keys));
      }
    }
    return sf;
  }

  Value convert(const FieldSpec& f, const toml::node& n) const {
    switch (f.kind) {
      case Kind::boolean:
        if (!n.is_boolean()) bad_type(f, n);
        return n.as_boolean()->get();
      case Kind::integer: {
        if (!n.is_integer()) bad_type(f, n);
        return integer(f, n, n);
      }
      case Kind::real: {
        if (!n.is_number()) bad_type(f, n);
        double x = number(f, n, n);
        check_range(f, n, x, repr(n));
        return x;
      }
      case Kind::string: {
        if (!n.is_string()) bad_type(f, n);
        std::string s = n.as_string()->get();
        check_choice(f, n, s);
        return s;
      }
      default: break;
    }
    const toml::array* a = n.as_array();
    if (!a) bad_type(f, n);
    switch (f.kind) {
      case Kind::int_list: {
        std::vector<int64_t> v;
        for (auto& e : *a) v.push_back(integer(f, n, e));
        return v;
      }
      case Kind::real_list: {
        std::vector<double> v;
        for (auto& e : *a) {
          double x = number(f, n, e);
          check_range(f, n, x, repr(e));
          v.push_back(x);
        }
        return v;
      }
      case Kind::string_list: {
        std::vector<std::string> v;
        for (auto& e : *a) {
          if (!e.is_string()) bad_type(f, n, std::string(type_name(e)) + " element");
          std::string s = e.as_string()->get();
          check_choice(f, n, s);
          v.push_back(s);
        }
        return v;
      }
      case Kind::filter_list: {
        std::vector<SweepFilter> v;
        for (auto& e : *a) v.push_back(filter(f, n, e));
        return v;
      }
      default: break;
    }
    throw InternalError("unhandled config kind");
  }

  template <class T>
  void no_duplicates(const std::string& path, const std::vector<T>& v) const {
    for (size_t i = 0; i < v.size(); ++i)
      for (size_t j = i + 1; j < v.size(); ++j)
        if (v[i] == v[j]) fail(loc_of(path), path + " lists the same value twice (entries " + std::to_string(i + 1) + " and " + std::to_string(j + 1) + ")");
  }

  void check_dataset_name(const std::string& path, const std::string& name) const {
    bool ok = !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char ch) {
      return std::isalnum(ch) || ch == '_' || ch == '-' || ch == '.';
    });
    if (!ok) fail(loc_of(path), path + " = \"" + name + "\" is not allowed; allowed: a non-empty name of letters, digits, '_', '-', '.'");
  }

  // The transfer regime's keys (docs/transfer.md) need a source model, and a key that would not
  // act is refused rather than let into the dense id.
  void transfer_check(const Config& c) const {
    if (c.dense.mode != "full" && c.model.pretrained.empty())
      fail(loc_of("dense.mode"), "dense.mode = \"" + c.dense.mode + "\" trains on a pretrained backbone; set model.pretrained");
    if (c.data.normalize == "source" && c.model.pretrained.empty())
      fail(loc_of("data.normalize"), "data.normalize = \"source\" follows the model.pretrained file; set model.pretrained");
    if (c.dense.mode == "head_then_full" && c.dense.head_epochs < 1)
      fail(loc_of("dense.head_epochs"), "dense.mode = \"head_then_full\" needs dense.head_epochs >= 1");
    if (c.dense.mode != "head_then_full" && c.dense.head_epochs != 0)
      fail(loc_of("dense.head_epochs"), "dense.head_epochs = " + std::to_string(c.dense.head_epochs) +
                                            " applies only to dense.mode = \"head_then_full\" (dense.mode = \"" + c.dense.mode + "\")");
  }

  void cross_check(const Config& c) const {
    for (auto [name, t] : {std::pair<const char*, const TrainConfig*>{"dense", &c.dense}, {"finetune", &c.finetune}, {"regularise", &c.regularise}}) {
      if (t->schedule == "step" && t->milestones.empty())
        fail(loc_of(std::string(name) + ".schedule"), std::string(name) + ".schedule = \"step\" needs " + name +
                                                          ".milestones (a non-empty array of epochs)");
      if (!std::is_sorted(t->milestones.begin(), t->milestones.end()))
        fail(loc_of(std::string(name) + ".milestones"), std::string(name) + ".milestones must be increasing");
    }
    // Whole ghost groups per global batch: a remainder would be a group of another size.
    // Whole ghost groups per global batch (a remainder would be a group of another size), and
    // at least one per rank of a run group (data/sampler.hpp gives each rank whole groups).
    for (auto [key, batch] : {std::pair<const char*, int64_t>{"dense.batch_size", c.dense.batch_size},
                              {"finetune.batch_size", c.finetune.batch_size},
                              {"search.batch_size", c.search.batch_size}}) {
      const int64_t group = ghost_group(c.model.ghost_batch, batch);
      if (batch % group != 0)
        fail(loc_of(key), std::string(key) + " = " + std::to_string(batch) + " is not a multiple of model.ghost_batch = " +
                              std::to_string(c.model.ghost_batch) + " (BatchNorm statistics groups); use a multiple, or change model.ghost_batch");
      if (batch / group < c.dist.ranks_per_run)
        fail(loc_of(key), std::string(key) + " = " + std::to_string(batch) + " holds " + std::to_string(batch / group) +
                              " BatchNorm group(s) of model.ghost_batch = " + std::to_string(c.model.ghost_batch) +
                              ", fewer than dist.ranks_per_run = " + std::to_string(c.dist.ranks_per_run) +
                              "; every rank needs a whole group: raise the batch size or lower model.ghost_batch");
    }
    if (c.dist.first_bucket_mib > c.dist.bucket_mib)
      fail(loc_of("dist.first_bucket_mib"), "dist.first_bucket_mib = " + format_value(c.dist.first_bucket_mib) +
                                                " must not exceed dist.bucket_mib = " + format_value(c.dist.bucket_mib));
    // An empty directory would silently write the results into the working directory.
    if (c.output.dir.empty()) fail(loc_of("output.dir"), "output.dir = \"\" is not allowed; allowed: a non-empty directory path");
    if (c.eval.latency_warmup_max < c.eval.latency_warmup)
      fail(loc_of("eval.latency_warmup_max"), "eval.latency_warmup_max = " + format_value(c.eval.latency_warmup_max) +
                                                   " must not be below eval.latency_warmup = " + format_value(c.eval.latency_warmup));
    transfer_check(c);
    check_dataset_name("data.dataset", c.data.dataset);
    for (auto& d : c.sweep.datasets) check_dataset_name("sweep.datasets", d);
    if (!c.data.store.empty() && c.sweep.datasets.size() > 1)
      fail(loc_of("data.store"), "data.store names one store but sweep.datasets lists " + std::to_string(c.sweep.datasets.size()) +
                                     " datasets; set data.root (stores are <root>/<dataset>.h5) instead");
    no_duplicates("sweep.archs", c.sweep.archs);
    no_duplicates("sweep.datasets", c.sweep.datasets);
    no_duplicates("sweep.budgets", c.sweep.budgets);
    no_duplicates("sweep.methods", c.sweep.methods);
    no_duplicates("sweep.seeds", c.sweep.seeds);
  }
};

bool in_scope(const FieldSpec& f, Scope s) {
  switch (s) {
    case Scope::all: return true;
    case Scope::run: return f.in_run;
    case Scope::dense: return f.in_dense;
  }
  return true;
}

bool matches(const SweepFilter& f, const Config& t) {
  if (f.arch && *f.arch != t.model.arch) return false;
  if (f.dataset && *f.dataset != t.data.dataset) return false;
  if (f.method && *f.method != t.prune.method) return false;
  if (f.budget && std::abs(*f.budget - t.prune.budget) > 1e-9) return false;
  if (f.seed && *f.seed != t.experiment.seed) return false;
  return true;
}

}  // namespace

std::string Config::resolved_store() const {
  if (!data.store.empty()) return data.store;
  return (std::filesystem::path(data.root) / (data.dataset + ".h5")).string();
}

Config load_string(const std::string& text, const std::string& source, const std::vector<std::string>& overrides) {
  return Loader(source).load(text, overrides);
}

Config load_file(const std::filesystem::path& path, const std::vector<std::string>& overrides) {
  // A directory opens and reads as an empty file on Linux, which would load the defaults.
  // (A pipe is fine: `passlab config <(...)`.)
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  using std::filesystem::file_type;
  if (!ec && st.type() != file_type::not_found && st.type() != file_type::regular && st.type() != file_type::fifo)
    throw ConfigError(path.string() + ": not a config file (" +
                      (st.type() == file_type::directory ? "a directory" : "not a regular file") + ")");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path.string() + ": cannot open config file");
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw ConfigError(path.string() + ": read error");
  return load_string(ss.str(), path.string(), overrides);
}

std::string to_toml(const Config& cfg, Scope scope) {
  std::vector<std::string> names = section_names();
  std::sort(names.begin(), names.end());
  std::string out;
  for (auto& s : names) {
    std::vector<const FieldSpec*> fs;
    for (auto& f : fields())
      if (f.section == s && in_scope(f, scope)) fs.push_back(&f);
    if (scope != Scope::all) {
      static const Config defaults;
      std::erase_if(fs, [&](const FieldSpec* f) { return f->id_when_set && format_value(f->get(cfg)) == format_value(f->get(defaults)); });
    }
    if (fs.empty()) continue;
    std::sort(fs.begin(), fs.end(), [](auto* a, auto* b) { return a->key < b->key; });
    if (!out.empty()) out += "\n";
    out += "[" + s + "]\n";
    for (auto* f : fs) out += f->key + " = " + format_value(f->get(cfg)) + "\n";
  }
  return out;
}

std::string run_id(const Config& cfg) {
  std::string t = to_toml(cfg, Scope::run);
  return hex_digest(hash64(t.data(), t.size()), 12);
}

std::string dense_id(const Config& cfg) {
  std::string t = to_toml(cfg, Scope::dense);
  return hex_digest(hash64(t.data(), t.size()), 12);
}

std::vector<Config> expand_tasks(const Config& cfg) {
  const auto& s = cfg.sweep;
  auto or_one = [](const auto& v, const auto& one) {
    using V = std::decay_t<decltype(v)>;
    return v.empty() ? V{one} : v;
  };
  auto datasets = or_one(s.datasets, cfg.data.dataset);
  auto archs = or_one(s.archs, cfg.model.arch);
  auto seeds = or_one(s.seeds, cfg.experiment.seed);
  auto budgets = or_one(s.budgets, cfg.prune.budget);
  auto methods = or_one(s.methods, cfg.prune.method);
  std::vector<Config> tasks;
  for (auto& d : datasets)
    for (auto& a : archs)
      for (auto seed : seeds)
        for (auto b : budgets)
          for (auto& m : methods) {
            Config t = cfg;
            t.data.dataset = d;
            t.model.arch = a;
            // One pretrained file per architecture: "weights/{arch}_imagenet.h5".
            for (size_t at; (at = t.model.pretrained.find("{arch}")) != std::string::npos;)
              t.model.pretrained.replace(at, 6, a);
            t.experiment.seed = seed;
            t.prune.budget = b;
            t.prune.method = m;
            t.sweep.archs.clear();
            t.sweep.datasets.clear();
            t.sweep.seeds.clear();
            t.sweep.budgets.clear();
            t.sweep.methods.clear();
            t.sweep.include.clear();
            t.sweep.exclude.clear();
            bool keep = s.include.empty() || std::any_of(s.include.begin(), s.include.end(), [&](auto& f) { return matches(f, t); });
            keep = keep && std::none_of(s.exclude.begin(), s.exclude.end(), [&](auto& f) { return matches(f, t); });
            if (keep) tasks.push_back(std::move(t));
          }
  return tasks;
}

}  // namespace passlab::config
