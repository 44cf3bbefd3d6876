/* Build metadata, generated into build/gen/buildinfo.h by the Makefile. */
#include "recd/core.h"

#include "buildinfo.h"

const char *recd_build_git(void)
{
    return RECD_BUILD_GIT;
}

const char *recd_build_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown";
#endif
}
