// Whether root may run a program that tool mode starts (a venv's
// interpreter, a launcher, the interpreter that byte-compiles the hook
// module): only when no one but root can change anything that process will
// load. Pure: the OS layer (examine_path in process.hpp) walks each path the
// way the kernel and the loader do and reports what it found on the way;
// this file decides. Every command that runs an interpreter asks here, so
// the rule is written once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pyshim {

// One thing met on the way to a path, or in the folder (or tree) it names.
struct PathStep {
  std::string path;        // the real path of this step (links already followed)
  bool exists = true;      // false: the walk ended here (ENOENT); nothing below exists yet
  bool member = false;     // the path itself or what its folder/tree holds, not a folder on the way
  std::uint32_t uid = 0;   // lstat's st_uid
  std::uint32_t mode = 0;  // lstat's st_mode
};

// How much of a path the process loads from: the file alone (an interpreter,
// a preload), any name in the folder (a library folder: the loader tries
// every soname there), or anything below it (a venv: site.py runs its .pth
// files; a folder on sys.path).
enum class LoadScope { kFile, kFolder, kTree };

struct LoadedPath {
  std::string what;  // "interpreter", "preload", "library folder", "home", ...
  std::string path;  // as the config or the venv names it
  LoadScope scope = LoadScope::kFile;
  std::vector<PathStep> steps;
  // false: the walk gave up (a link loop, too many entries, a folder it could
  // not read): then the path is not known to be root's.
  bool complete = true;
};

// The first path (and the step on its way) that someone other than root
// can change, or root_only when there is none.
struct RootTrust {
  bool root_only = true;
  std::string what;    // of the LoadedPath
  std::string path;    // of the LoadedPath
  std::string step;    // the step at fault
  std::string reason;  // "owned by uid 1000", "writable by its group", ...
};

// The rule. Each folder on the way is root's and writable by root alone, or
// sticky (others cannot replace root's entries in it); the path itself and
// everything the process may load from it are root's and writable by root
// alone (a sticky folder is not enough there: anyone could add a library or
// a .pth file); a path that does not exist yet sits in a folder only root
// can write (else anyone could create it). Links count for what they name.
RootTrust decide_root_trust(const std::vector<LoadedPath>& paths);

// Who the program runs as: -1 (this process's ids) unless this process is
// root and the paths are not root's alone; then as the owner of what is
// being worked on (owner_uid: the venv folder's owner), or nobody when root
// owns it, group nogroup, no other group.
inline constexpr int kNobodyUid = 65534;
inline constexpr int kNoGroupGid = 65534;
struct RunAs {
  int uid = -1;
  int gid = -1;
  RootTrust trust;  // why (root_only false when it drops root)
  bool drops() const { return uid >= 0; }
};
RunAs decide_run_as(std::uint32_t euid, const std::vector<LoadedPath>& paths,
                    std::uint32_t owner_uid);

// "the library folder /x (from ...) is writable by its group: /x": for the
// line tool mode prints when it does not run a program as root.
std::string describe(const RootTrust& trust);

}  // namespace pyshim
