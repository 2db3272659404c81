// Clang thread-safety annotations; no-ops for other compilers. Checked by the clang -Wthread-safety pass that
// .ci/run runs (scripts/check-thread-safety). Use them with pkgcast::Mutex (core/mutex.h): std::mutex is not an
// annotated capability in libstdc++, so annotations on it check nothing.
#pragma once

#if defined(__clang__)
#define PKG_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define PKG_THREAD_ANNOTATION_(x)
#endif

#define PKG_CAPABILITY(x) PKG_THREAD_ANNOTATION_(capability(x))
#define PKG_SCOPED_CAPABILITY PKG_THREAD_ANNOTATION_(scoped_lockable)
#define PKG_GUARDED_BY(x) PKG_THREAD_ANNOTATION_(guarded_by(x))
#define PKG_PT_GUARDED_BY(x) PKG_THREAD_ANNOTATION_(pt_guarded_by(x))
#define PKG_REQUIRES(...) PKG_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define PKG_EXCLUDES(...) PKG_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#define PKG_ACQUIRE(...) PKG_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define PKG_RELEASE(...) PKG_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define PKG_TRY_ACQUIRE(...) PKG_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))
#define PKG_ASSERT_CAPABILITY(x) PKG_THREAD_ANNOTATION_(assert_capability(x))
#define PKG_NO_THREAD_SAFETY_ANALYSIS PKG_THREAD_ANNOTATION_(no_thread_safety_analysis)
