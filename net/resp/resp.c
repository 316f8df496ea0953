/*
 * resp.c - what the RESP parser (resp_parse.c) and encoder (resp_encode.c)
 * share: the error table and the allocation hooks (see resp.h and the
 * normative docs/resp.md).
 */
#include "resp.h"
#include "resp_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Error table                                                             */

/* The one place where codes meet their text; resp_strerror() and
 * resp_parser_errmsg() both read it, so the wire text cannot drift. */
static const struct
{
    int code;
    const char *text;
} resp_errors[] = {
    {0, "success"},
    {RESP_INCOMPLETE, "incomplete request: more input needed"},
    {RESP_ENOMEM, "out of memory"},
    {RESP_EINVAL, "invalid argument"},
    {RESP_EMBULKLEN, "Protocol error: invalid multibulk length"},
    {RESP_EBULKLEN, "Protocol error: invalid bulk length"},
    {RESP_EDOLLAR, "Protocol error: expected '$'"},
    {RESP_EQUOTES, "Protocol error: unbalanced quotes in request"},
    {RESP_EINLINE, "Protocol error: too big inline request"},
    {RESP_EMBULKHDR, "Protocol error: too big mbulk count string"},
    {RESP_EBULKHDR, "Protocol error: too big bulk count string"},
    {RESP_EBULKEND, "Protocol error: expected '\\r\\n' after bulk data"},
    {RESP_EREQUEST, "Protocol error: too big request"},
    {RESP_EINLINEARGS, "Protocol error: too many arguments in inline request"},
    {RESP_EOUTPUT, "reply buffer limit reached"},
};

const char *resp_strerror(int code)
{
    for (size_t i = 0; i < sizeof(resp_errors) / sizeof(resp_errors[0]); i++) {
        if (resp_errors[i].code == code) {
            return resp_errors[i].text;
        }
    }
    return "unknown error";
}

/* ---------------------------------------------------------------------- */
/* Allocation                                                              */

int resp_alloc_copy(struct resp_allocator *dst,
                    const struct resp_allocator *src)
{
    memset(dst, 0, sizeof(*dst));
    if (src == NULL) {
        return 0;
    }
    /* Memory from one allocator freed by another would corrupt the heap,
     * so the two hooks come as a pair or not at all. */
    if ((src->realloc_fn == NULL) != (src->free_fn == NULL)) {
        return RESP_EINVAL;
    }
    *dst = *src;
    return 0;
}

void *resp_mem_realloc(const struct resp_allocator *a, void *ptr, size_t size)
{
    if (a->realloc_fn != NULL) {
        return a->realloc_fn(a->ctx, ptr, size);
    }
    return realloc(ptr, size);
}

void resp_mem_free(const struct resp_allocator *a, void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    if (a->free_fn != NULL) {
        a->free_fn(a->ctx, ptr);
    } else {
        free(ptr);
    }
}

/* Grows the array at *ptr to @n elements of @size bytes. On failure *ptr is
 * untouched, so the caller's state stays consistent. */
int resp_grow_array(const struct resp_allocator *a,
                    void *ptr,
                    size_t n,
                    size_t size)
{
    void **slot = ptr;
    if (n > SIZE_MAX / size) {
        return RESP_ENOMEM;
    }
    void *fresh = resp_mem_realloc(a, *slot, n * size);
    if (fresh == NULL) {
        return RESP_ENOMEM;
    }
    *slot = fresh;
    return 0;
}
