#pragma once
#include <string>

namespace passlab::cli {

// docs/run-file.json: {"entries": the run-file schema, "methods": the method registry}.
std::string run_file_schema_json();

}  // namespace passlab::cli
