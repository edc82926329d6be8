#include "gf/alloc.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "gf/error.h"

/* Counters are atomic: curl's resolver threads allocate too. */
static atomic_ulong count;
static atomic_ulong fail_at;
static atomic_ulong failures;

static int should_fail(void)
{
    unsigned long n = atomic_fetch_add(&count, 1) + 1;
    unsigned long at = atomic_load(&fail_at);
    if (at != 0 && n == at) {
        atomic_fetch_add(&failures, 1);
        return 1;
    }
    return 0;
}

void *gf_malloc(size_t size)
{
    return should_fail() ? NULL : malloc(size);
}

void *gf_calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : calloc(n, size);
}

void *gf_realloc(void *p, size_t size)
{
    /* realloc(p, 0) frees in some callers' eyes: never fail that one. */
    if (size != 0 && should_fail())
        return NULL;
    return realloc(p, size);
}

char *gf_strdup(const char *s)
{
    return should_fail() ? NULL : strdup(s);
}

void gf_free(void *p)
{
    free(p);
}

/* libuv aborts the process when some of its own allocations fail (for
 * one, growing its watcher array in uv__io_start), so failing them would
 * only test libuv. Its allocations are counted but never failed. */
static void *uv_malloc_counted(size_t size)
{
    atomic_fetch_add(&count, 1);
    return malloc(size);
}

static void *uv_realloc_counted(void *p, size_t size)
{
    atomic_fetch_add(&count, 1);
    return realloc(p, size);
}

static void *uv_calloc_counted(size_t n, size_t size)
{
    atomic_fetch_add(&count, 1);
    return calloc(n, size);
}

int gf_alloc_install(long curl_flags)
{
    uv_replace_allocator(uv_malloc_counted, uv_realloc_counted, uv_calloc_counted, gf_free);
    cJSON_Hooks hooks = {.malloc_fn = gf_malloc, .free_fn = gf_free};
    cJSON_InitHooks(&hooks);
    if (curl_global_init_mem(curl_flags, gf_malloc, gf_free, gf_realloc, gf_strdup, gf_calloc) !=
        CURLE_OK)
        return GF_ECURL;
    return 0;
}

void gf_alloc_fail_at(unsigned long n)
{
    atomic_store(&count, 0);
    atomic_store(&fail_at, n);
}

unsigned long gf_alloc_count(void)
{
    return atomic_load(&count);
}

unsigned long gf_alloc_failures(void)
{
    return atomic_load(&failures);
}
