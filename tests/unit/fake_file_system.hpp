// One in-memory file system for every unit test of the launch logic (the
// general path in launch_test.cpp, the hot path in hot_path_test.cpp):
// files with contents, modes, identities and owners, folders, symlinks.
#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <map>
#include <string>

#include "pyshim/launch.hpp"

namespace pyshim::testing {

// The first bytes of a 64-bit little-endian x86-64 shared object: what a
// restore library looks like to check_restore_library.
inline std::string elf_shared_object() {
  std::string image(64, '\0');
  image[0] = 0x7f, image[1] = 'E', image[2] = 'L', image[3] = 'F';
  image[4] = 2 /* ELFCLASS64 */, image[5] = 1 /* ELFDATA2LSB */, image[6] = 1 /* EV_CURRENT */;
  image[16] = 3 /* ET_DYN */, image[18] = 62 /* EM_X86_64 */, image[20] = 1;
  image[52] = 64 /* e_ehsize */, image[54] = 56 /* e_phentsize */, image[58] = 64;
  return image;
}

class FakeFileSystem final : public FileSystem {
 public:
  struct File {
    std::string text;
    std::uint32_t mode = S_IFREG | 0644;
    std::uint64_t ino = 0;
    std::int64_t mtime = 0;
    std::uint32_t uid = 0;
    std::int64_t ctime = 0;
  };

  // Owner of the files and folders made from now on.
  std::uint32_t default_uid = 0;

  // Each write gets a later mtime, as on a disk; ino 0 picks a fresh one.
  // Writes are 10 s apart and each file's mtime is 5 s before its ctime, as
  // `pyshim install` leaves the config it stamps (never "racily clean"); a
  // test makes a file racy with racy().
  void file(const std::string& path, std::string text, std::uint32_t mode = S_IFREG | 0644,
            std::uint64_t ino = 0) {
    clock_ += 10'000'000'000;
    files_[path] = {std::move(text),        mode,        ino != 0 ? ino : ++next_ino_,
                    clock_ - 5'000'000'000, default_uid, clock_};
  }
  void dir(const std::string& path, std::uint32_t mode = S_IFDIR | 0755) {
    clock_ += 10'000'000'000;
    files_[path] = {"", mode, ++next_ino_, clock_, default_uid, clock_};
  }
  void remove(const std::string& path) {
    files_.erase(path);
    links_.erase(path);
  }
  void owner(const std::string& path, std::uint32_t uid) { files_[path].uid = uid; }
  // Its mtime as recent as its ctime: a same-size edit now could leave both
  // unchanged on a file system with coarse timestamps.
  void racy(const std::string& path) { files_[path].mtime = files_[path].ctime; }
  // An edit that keeps size, mtime and ctime (within one timestamp tick).
  void edit_in_place(const std::string& path, std::string text) {
    files_[path].text = std::move(text);
  }
  void link(const std::string& path, const std::string& target) {
    links_[path] = target;
    link_owners_[path] = default_uid;
  }
  // false: no /proc (a /proc/self/fd/N opened here is not there).
  bool proc_mounted = true;

  int lstat(const std::string& path, FileInfo& info) override {
    auto link = links_.find(path);
    if (link == links_.end()) return stat(path, info);
    ++calls;
    info = {{1, 99, link->second.size(), 0, 0}, S_IFLNK | 0777, link_owners_[path]};
    return 0;
  }
  int stat(const std::string& path, FileInfo& info) override {
    if (path.starts_with("/proc/self/fd/")) {
      ++calls;
      if (!proc_mounted || opened_fd_ == 0 ||
          path != "/proc/self/fd/" + std::to_string(opened_fd_)) {
        return ENOENT;
      }
      info = {{1, 98, 0, 0, 0}, S_IFREG | 0644, 0};
      return 0;
    }
    ++calls;
    auto it = files_.find(resolve(path));
    if (it == files_.end()) return ENOENT;
    info = {{1, it->second.ino, it->second.text.size(), it->second.mtime, it->second.ctime},
            it->second.mode,
            it->second.uid};
    return 0;
  }
  int open_inherited(const std::string& path, int& fd) override {
    ++calls;
    if (files_.find(resolve(path)) == files_.end()) return ENOENT;
    fd = opened_fd_ = 5;
    return 0;
  }
  int read_file(const std::string& path, std::string& out, FileInfo* opened = nullptr) override {
    ++calls;
    auto it = files_.find(resolve(path));
    if (it == files_.end()) return ENOENT;
    if ((it->second.mode & S_IFMT) == S_IFDIR) return EISDIR;
    out = it->second.text;
    if (opened != nullptr) {
      --calls;  // fstat of what was opened: part of the read
      stat(path, *opened);
    }
    return 0;
  }
  int read_head(const std::string& path, std::size_t max, std::string& out) override {
    ++calls;
    auto it = files_.find(resolve(path));
    if (it == files_.end()) return ENOENT;
    out = it->second.text.substr(0, max);
    return 0;
  }
  int readlink(const std::string& path, std::string& target) override {
    ++calls;
    auto it = links_.find(path);
    if (it == links_.end()) return files_.count(path) != 0 ? EINVAL : ENOENT;
    target = it->second;
    return 0;
  }

  int calls = 0;  // every lookup counts, as a syscall would

 private:
  std::string resolve(std::string path) const {
    for (int i = 0; i < 10; ++i) {
      auto it = links_.find(path);
      if (it == links_.end()) break;
      path = it->second.starts_with('/') ? it->second : dirname(path) + "/" + it->second;
    }
    return path;
  }
  std::map<std::string, File> files_;
  std::map<std::string, std::string> links_;
  std::map<std::string, std::uint32_t> link_owners_;
  int opened_fd_ = 0;
  std::uint64_t next_ino_ = 100;
  std::int64_t clock_ = 0;
};

}  // namespace pyshim::testing
