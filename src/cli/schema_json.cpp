// docs/run-file.json: the run-file schema and the method registry as JSON, for readers outside
// C++ (analysis/runs.py). Written here, above both tables, because the cli may include config
// and io alike.
#include "schema_json.hpp"

#include <sstream>

#include "passlab/config/methods.hpp"
#include "passlab/config/schema.hpp"
#include "passlab/io/run_schema.hpp"

namespace passlab::cli {
namespace {

// A JSON string: TOML's basic-string escapes (\", \\, \n, \t, \r, \uXXXX) are valid JSON escapes.
std::string quote(const std::string& s) { return config::format_value(config::Value(s)); }

const char* boolean(bool b) { return b ? "true" : "false"; }

}  // namespace

std::string run_file_schema_json() {
  namespace rf = io::run_file;
  std::ostringstream o;
  o << "{\n  \"generated_by\": \"passlab inspect --schema-json\",\n  \"entries\": [\n";
  const auto& entries = rf::entries();
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    std::string files;
    if (e.files & rf::Files::dense) files += quote(rf::kDenseKind);
    if (e.files & rf::Files::prune) files += std::string(files.empty() ? "" : ", ") + quote(rf::kPruneKind);
    o << "    {\"path\": " << quote(e.path) << ", \"attr\": " << quote(e.attr) << ", \"item\": " << quote(rf::to_string(e.item))
      << ", \"type\": " << quote(rf::to_string(e.type)) << ", \"files\": [" << files
      << "], \"need\": " << quote(rf::to_string(e.need)) << ", \"when\": " << quote(e.when) << ", \"doc\": " << quote(e.doc)
      << "}" << (i + 1 < entries.size() ? "," : "") << "\n";
  }
  o << "  ],\n  \"methods\": [\n";
  const auto& methods = config::methods();
  for (size_t i = 0; i < methods.size(); ++i) {
    const auto& m = methods[i];
    o << "    {\"name\": " << quote(m.name) << ", \"family\": " << quote(config::to_string(m.family))
      << ", \"criterion\": " << quote(m.criterion) << ", \"allocation\": " << quote(config::to_string(m.allocation))
      << ", \"needs_data\": " << boolean(m.needs_data()) << ", \"prompt\": " << boolean(m.prompt)
      << ", \"recurrence\": " << boolean(m.recurrence) << ", \"stats\": " << boolean(m.stats)
      << ", \"doc\": " << quote(m.doc) << "}" << (i + 1 < methods.size() ? "," : "") << "\n";
  }
  o << "  ]\n}\n";
  return o.str();
}

}  // namespace passlab::cli
