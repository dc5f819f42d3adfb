// What the launcher image carries for the tool to find and fill in: the
// launcher note (recognises a pyshim launcher of any build) and the stamp
// area (the resolved config of a launcher copy, written by `pyshim install`).
#include <array>

#include "launcher.hpp"
#include "pyshim/launch.hpp"
#include "pyshim/stamp.hpp"

#ifndef PYSHIM_VERSION
#error "PYSHIM_VERSION must be defined by the build"
#endif

namespace {

using Area = std::array<char, pyshim::kStampCapacity>;

// An unstamped area: header with length 0 and this build's version (the
// same bytes as pyshim::empty_stamp_area, built at compile time so the
// image needs no constructor).
constexpr Area unstamped_area() {
  Area area{};
  for (std::size_t i = 0; i < sizeof pyshim::kStampMagic; ++i) area[i] = pyshim::kStampMagic[i];
  area[8] = static_cast<char>(pyshim::kStampFormat);  // u32 format, little-endian
  constexpr char kVersion[] = PYSHIM_VERSION;
  static_assert(sizeof kVersion <= 16, "version must fit the stamp header");
  for (std::size_t i = 0; i + 1 < sizeof kVersion; ++i) area[16 + i] = kVersion[i];
  return area;
}

struct LauncherNote {
  unsigned namesz = 7, descsz = 8, type = 1;
  char name[8] = {'p', 'y', 's', 'h', 'i', 'm', 0, 0};
  char desc[8] = {'l', 'a', 'u', 'n', 'c', 'h', 'e', 'r'};
};

}  // namespace

// Read-only, page-aligned, its own section: `pyshim install` finds it by name
// in the file and overwrites it in each launcher copy it writes. Defined in
// this file only, so no other translation unit can constant-fold its bytes.
extern "C" {
__attribute__((section(".pyshim.stamp"), used, aligned(4096))) extern const Area pyshim_stamp_area =
    unstamped_area();
}

// A .note section lands in the first page, where the note is looked for.
__attribute__((section(".note.pyshim"), used, aligned(4))) static const LauncherNote kNote{};

namespace pyshim {

std::string_view own_stamp_area() {
  const char* area = pyshim_stamp_area.data();
  // The bytes are the file's, not the initialiser's: keep the compiler from
  // assuming otherwise.
  asm volatile("" : "+r"(area));
  return {area, kStampCapacity};
}

}  // namespace pyshim
