#include "pyshim/root_trust.hpp"

#include <sys/stat.h>

#include <fmt/format.h>

#include "pyshim/launch.hpp"

namespace pyshim {
namespace {

constexpr std::uint32_t kOthersWrite = S_IWGRP | S_IWOTH;

// Why someone other than root can change what this step is, or "".
// strict: a sticky folder is not enough (what is looked up in it, or
// created in it, could be anyone's).
std::string fault(const PathStep& step, bool strict) {
  if (step.uid != 0) return fmt::format("owned by uid {}", step.uid);
  // A link's own mode means nothing, and only its folder's writers can
  // replace it; the walk follows it to what it names.
  if (S_ISLNK(step.mode)) return {};
  std::uint32_t write = step.mode & kOthersWrite;
  if (write == 0) return {};
  if (!strict && S_ISDIR(step.mode) && (step.mode & S_ISVTX) != 0) return {};
  return (write & S_IWOTH) != 0 ? "writable by others" : "writable by its group";
}

RootTrust blame(const LoadedPath& loaded, std::string step, std::string reason) {
  return {false, loaded.what, loaded.path, std::move(step), std::move(reason)};
}

}  // namespace

RootTrust decide_root_trust(const std::vector<LoadedPath>& paths) {
  for (const LoadedPath& loaded : paths) {
    if (!loaded.complete) {
      return blame(loaded, loaded.path, "could not be examined completely");
    }
    if (loaded.steps.empty()) return blame(loaded, loaded.path, "could not be examined");
    for (std::size_t i = 0; i < loaded.steps.size(); ++i) {
      const PathStep& step = loaded.steps[i];
      if (!step.exists) {
        // Whoever can write the folder above can create it.
        if (i == 0) return blame(loaded, step.path, "does not exist");
        const PathStep& parent = loaded.steps[i - 1];
        if (std::string why = fault(parent, true); !why.empty()) {
          return blame(loaded, step.path,
                       fmt::format("does not exist, and {} is {}", parent.path, why));
        }
        continue;
      }
      if (std::string why = fault(step, step.member); !why.empty()) {
        return blame(loaded, step.path, std::move(why));
      }
    }
  }
  return {};
}

RunAs decide_run_as(std::uint32_t euid, const std::vector<LoadedPath>& paths,
                    std::uint32_t owner_uid) {
  RunAs run;
  if (euid != 0) return run;
  run.trust = decide_root_trust(paths);
  if (run.trust.root_only) return run;
  run.uid = owner_uid != 0 ? static_cast<int>(owner_uid) : kNobodyUid;
  run.gid = kNoGroupGid;
  return run;
}

std::string describe(const RootTrust& trust) {
  if (trust.root_only) return "only root can change what it loads";
  // Reasons are "owned by ...", "writable by ..." (said with "is") or a
  // whole predicate ("does not exist, ...", "could not be ...").
  bool predicate = trust.reason.starts_with("does") || trust.reason.starts_with("could");
  std::string said = predicate ? trust.reason : "is " + trust.reason;
  // Paths come from files others may write: escaped and capped.
  std::string path = printable(trust.path, 1024);
  if (trust.step == trust.path) return fmt::format("the {} {} {}", trust.what, path, said);
  return fmt::format("the {} {}: {} {}", trust.what, path, printable(trust.step, 1024), said);
}

}  // namespace pyshim
