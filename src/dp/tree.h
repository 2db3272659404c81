// Writing and checking a content tree without ever following a link: every path is re-checked (even though
// content::parse_manifest checked it) and opened component by component from the tree's root descriptor with
// O_NOFOLLOW, so neither a hostile manifest nor a symlink created earlier in the same tree can redirect a write
// outside the tree.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "content/content.h"
#include "core/result.h"
#include "dp/fs_util.h"

namespace pkgcast::dp {

// content::check_entry_path, then no component is empty, "." or "..", and the path is not absolute.
Status recheck_path(std::string_view path, const content::ManifestLimits& limits);

// A symlink at `link_path` with `target` must be relative and resolve (lexically) inside the tree.
Status check_link_target(std::string_view link_path, std::string_view target);

// Opens the directory that holds `path` (every component but the last, each with O_NOFOLLOW|O_DIRECTORY) below
// `root_fd`; `leaf` receives the last component.
Result<Fd> open_parent(int root_fd, std::string_view path, std::string& leaf);

// A chunk's verified raw bytes.
using ChunkBytes = std::function<Result<std::string>(const content::ChunkRef&)>;

// Creates `name` in `parent_fd` (O_CREAT|O_EXCL|O_NOFOLLOW) from the entry's chunks, checking each chunk's size
// against the manifest ("larger than announced"), the file's size and its SHA-256, then sets its mode and fsyncs
// it. `display` names the file in errors. On error the caller discards the directory.
Status write_file_entry(int parent_fd, const std::string& name, const content::ManifestEntry& entry,
                        const ChunkBytes& chunks, const std::filesystem::path& display, const WriteFault& fault);

// Checks an installed entry below `root_fd` (type, mode, size, SHA-256, link target): "" when it matches, else
// why not. Streams files; memory does not grow with their size.
std::string check_installed_entry(int root_fd, const content::ManifestEntry& entry);

}  // namespace pkgcast::dp
