// passlab seal: gives result files written before content digests (passlab 431f8cf and older)
// their digest, after checking everything else a usable result needs (io/result_file.hpp).
#include <cstdio>
#include <filesystem>
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "passlab/core/error.hpp"
#include "passlab/io/result_file.hpp"

namespace passlab::cli {

Command add_seal_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto* sub = app.add_subcommand(
      "seal",
      "Verify result files written before content digests (complete, schema-valid, finite) and add their digest, "
      "marked sealed_at; files that already have one are left alone");
  sub->add_option("path", *path, "Results directory (its dense/ and runs/) or one dense or run file")->required();
  return {sub, [path](const Context&) {
            namespace fs = std::filesystem;
            const fs::path p = *path;
            std::vector<fs::path> files;
            std::error_code ec;
            if (fs::is_regular_file(p, ec)) {
              files.push_back(p);
            } else if (fs::is_directory(p, ec)) {
              for (const char* sub_dir : {"dense", "runs"})
                if (fs::is_directory(p / sub_dir, ec))
                  for (auto& e : fs::directory_iterator(p / sub_dir))
                    if (e.path().extension() == ".h5") files.push_back(e.path());
              std::sort(files.begin(), files.end());
            } else {
              throw ConfigError("passlab seal: " + p.string() + ": no such file or directory");
            }
            int sealed = 0, already = 0, failed = 0, refused = 0;
            for (auto& f : files) {
              bool now = false;
              const auto v = io::run_file::seal(f, &now);
              if (now) {
                ++sealed;
                std::printf("sealed %s\n", f.string().c_str());
              } else if (v.state == io::run_file::Verdict::State::failed) {
                ++failed;  // a failure record: nothing to vouch for
              } else if (v.usable()) {
                ++already;
              } else {
                ++refused;
                std::printf("NOT SEALED %s: %s\n", f.string().c_str(), v.reason().c_str());
              }
            }
            std::printf("%zu file(s): %d sealed, %d already had a digest, %d failure records, %d not usable\n",
                        files.size(), sealed, already, failed, refused);
            return refused == 0 ? 0 : 1;
          }};
}

}  // namespace passlab::cli
