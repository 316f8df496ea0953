/*
 * resp_internal.h - shared by resp.c, resp_parse.c and resp_encode.c only.
 */
#ifndef BALLOT_NET_RESP_INTERNAL_H
#define BALLOT_NET_RESP_INTERNAL_H

#include <stddef.h>

#include "resp.h"

/* Copies @src's hooks into @dst (zeroed for NULL); RESP_EINVAL unless
 * realloc_fn and free_fn come as a pair. */
int resp_alloc_copy(struct resp_allocator *dst,
                    const struct resp_allocator *src);
/* realloc()/free() through the hooks, or the C library's. */
void *resp_mem_realloc(const struct resp_allocator *a, void *ptr, size_t size);
void resp_mem_free(const struct resp_allocator *a, void *ptr);
/* Grows the array at *@ptr to @n elements of @size bytes. On failure *@ptr
 * is untouched, so the caller's state stays consistent. */
int resp_grow_array(const struct resp_allocator *a,
                    void *ptr,
                    size_t n,
                    size_t size);

#endif
