/* One allocator for getflags, libcurl, libuv and cJSON.
 *
 * gf_alloc_install() routes the three libraries' allocations through the
 * gf_* functions below (curl_global_init_mem, uv_replace_allocator,
 * cJSON_InitHooks), so a test can fail the Nth allocation of a whole run
 * and every layer sees the failure the same way. libuv's allocations are
 * counted but never failed: libuv aborts on some of its own allocation
 * failures, which no caller can recover from. */
#ifndef GF_ALLOC_H
#define GF_ALLOC_H

#include <stddef.h>

void *gf_malloc(size_t size);
void *gf_calloc(size_t n, size_t size);
void *gf_realloc(void *p, size_t size);
char *gf_strdup(const char *s);
void gf_free(void *p);

/* Hooks libuv and cJSON, then initialises libcurl with these functions
 * (it replaces curl_global_init). Call once, first thing in main. Returns
 * 0, or GF_ECURL when libcurl cannot initialise. */
int gf_alloc_install(long curl_flags);

/* Makes the nth allocation from now fail (1 = the next one); 0 disables.
 * For tests only. */
void gf_alloc_fail_at(unsigned long n);

/* How many allocations were made, and how many were failed on purpose. */
unsigned long gf_alloc_count(void);
unsigned long gf_alloc_failures(void);

#endif
