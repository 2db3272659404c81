// What an ingest saw of each file of a source directory, so that the next ingest of the same directory can take a
// file's hash and chunks from the previous manifest instead of reading it again (rsync's "quick check", made
// stricter). Internal to src/content; docs/content.md, "Updates that read only what changed".
//
// A file is taken over only when its device, inode, size, mtime and ctime are all what they were. Writing a file
// sets its ctime to the current time, and no system call sets a ctime to a chosen value, so a file whose contents
// were written since has a different ctime even when its size and mtime were put back (`touch -r`, `cp -p`,
// `rsync -t`). One case remains: a write within the file system's timestamp granularity of the moment the file was
// recorded leaves the ctime as it was (git's "racy" entries). So a file is recorded only when its mtime and ctime
// are older than the ingest's start by a margin; a file changed just before an ingest is read again next time.
//
// The record names the manifest it describes and ends with a SHA-256 of everything before it; a record that does
// not parse, does not check, or names a manifest the library no longer holds is ignored (every file is read).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "content/content.h"

namespace pkgcast::content {

// A file's identity and times as stat() gives them.
struct FileStamp {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_sec = 0;
  std::int64_t mtime_nsec = 0;
  std::int64_t ctime_sec = 0;
  std::int64_t ctime_nsec = 0;

  static FileStamp of(const struct stat& st);
  friend bool operator==(const FileStamp&, const FileStamp&) = default;
};

struct SourceRecord {
  Digest manifest_id;
  // One per recorded file: the index of its entry in the manifest, and the stamp it had when it was read.
  struct File {
    std::uint32_t entry = 0;
    FileStamp stamp;
    friend bool operator==(const File&, const File&) = default;
  };
  std::vector<File> files;  // strictly increasing `entry`
  friend bool operator==(const SourceRecord&, const SourceRecord&) = default;
};

std::string serialize_source_record(const SourceRecord& record);
// nullopt for anything but a well-formed record whose checksum matches.
std::optional<SourceRecord> parse_source_record(std::string_view bytes);
// The manifest a record names, read from its first lines alone (garbage collection reads no more); nullopt when
// they are not a record's.
std::optional<Digest> source_record_manifest(std::string_view head);

}  // namespace pkgcast::content
