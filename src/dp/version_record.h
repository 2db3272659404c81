// What the agent verified of an installed version, recorded with it in versions/<ContentID> so that a restarted
// agent still trusts it: the manifest hash on the first line, then one line a file the agent verified,
// "<entry> <inode> <size> <mtime_ns> <whole>" (entry: the file's index in the manifest; whole: 0 or 1). A record
// of the hash alone (an older agent's, or a validated version's) trusts no file. docs/dp-protocol.md.
//
// The parser is for the agent's own files, written atomically: it never fails on what follows the first line, it
// ignores a line that does not parse or names no entry, so that the file it would have named is read and
// verified rather than trusted. Fuzzed: fuzz/version_record_fuzz.cc.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "content/content.h"

namespace pkgcast::dp {

// What a file looked like right after the agent verified it (its hash against the manifest): an installed file
// that still has the same inode, size and modification time is taken as still holding those bytes when an update
// links it (as rsync's quick check takes a file as unchanged). Bytes changed without any of these changing (bit rot,
// a deliberate write that resets the time) are VALIDATE's to find.
//
// `whole`: the file's whole-file SHA-256 was checked against its manifest (or it is a link of such a file). A file
// put together from chunks that were each checked, some copied unread from installed files, is not: its chunks may
// be copied unread again, but a file with its hash is linked without reading it only when `whole`, so that a
// manifest whose file hash does not match its chunks cannot pass that hash on to another package's file.
struct FileFingerprint {
  std::uint64_t inode = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  bool known = false;
  bool whole = false;
  static FileFingerprint of(const struct stat& st);  // known, not whole
  // The same file, unchanged: inode, size and modification time (both known).
  bool same_state(const FileFingerprint& other) const {
    return known && other.known && inode == other.inode && size == other.size && mtime_ns == other.mtime_ns;
  }
};

std::string serialize_version_record(const content::Digest& manifest_hash,
                                     const std::vector<FileFingerprint>& fingerprints);

struct VersionRecord {
  content::Digest manifest_hash;
  std::vector<FileFingerprint> fingerprints;  // by manifest entry (`entries` of them); unknown where none is recorded
};
// nullopt when the first line is not a manifest hash.
std::optional<VersionRecord> parse_version_record(std::string_view text, std::size_t entries);

// The manifest hash a versions/ or staging/*.manifest record names (its first line, blanks at its end ignored).
std::optional<content::Digest> first_line_digest(std::string_view text);

}  // namespace pkgcast::dp
