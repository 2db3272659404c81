// Clang thread-safety annotations; no-ops for other compilers. Checked by a clang -Wthread-safety build.
#pragma once

#if defined(__clang__)
#define PKG_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define PKG_THREAD_ANNOTATION_(x)
#endif

#define PKG_GUARDED_BY(x) PKG_THREAD_ANNOTATION_(guarded_by(x))
#define PKG_PT_GUARDED_BY(x) PKG_THREAD_ANNOTATION_(pt_guarded_by(x))
#define PKG_REQUIRES(...) PKG_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define PKG_EXCLUDES(...) PKG_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
