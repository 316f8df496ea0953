/*
 * fuzz_codec.c - libFuzzer target for the peer codec (net/codec.c).
 *
 * The input is one message payload. Properties checked on every input:
 *
 *   1. decoding never crashes, overreads or leaks (ASan, LeakSanitizer);
 *   2. a refused payload is refused with a codec code and no block;
 *   3. an accepted payload has the size codec_message_size() computes and
 *      encodes back to exactly its own bytes (the format is canonical), and
 *      that encoding decodes again to the same bytes: decode, encode and
 *      decode agree.
 *
 * Inputs of CODEC_HELLO_BYTES bytes also go through the hello decoder with
 * the same properties, and every input through the frame checks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small limits reach the limit paths with short inputs. */
#define FUZZ_MAX_ENTRIES 64u
#define FUZZ_MAX_ENTRY_BYTES 4096u

static void check_message(const uint8_t *data, size_t size)
{
    struct raft_message m, again;
    void *block = (void *)1, *block2 = NULL;
    int rv = codec_message_decode(data, size, FUZZ_MAX_ENTRIES,
                                  FUZZ_MAX_ENTRY_BYTES, &m, &block);
    if (rv != 0) {
        if ((rv != CODEC_EINVAL && rv != CODEC_ETOOBIG &&
             rv != CODEC_EVERSION && rv != CODEC_ENOMEM) ||
            block != NULL) {
            abort();
        }
        return;
    }
    size_t n = codec_message_size(&m);
    if (n != size) {
        abort();
    }
    uint8_t *enc = malloc(n);
    if (enc == NULL) {
        abort();
    }
    codec_message_encode(&m, enc);
    if (memcmp(enc, data, n) != 0) {
        abort();
    }
    if (codec_message_decode(enc, n, FUZZ_MAX_ENTRIES, FUZZ_MAX_ENTRY_BYTES,
                             &again, &block2) != 0) {
        abort();
    }
    uint8_t *enc2 = malloc(n);
    if (enc2 == NULL) {
        abort();
    }
    codec_message_encode(&again, enc2);
    if (memcmp(enc2, enc, n) != 0) {
        abort();
    }
    free(enc2);
    free(block2);
    free(enc);
    free(block);
}

static void check_hello(const uint8_t *data, size_t size)
{
    struct codec_hello h;
    uint8_t buf[CODEC_HELLO_BYTES];
    if (codec_hello_decode(data, size, &h) != 0) {
        return;
    }
    codec_hello_encode(&h, buf);
    if (size != CODEC_HELLO_BYTES || memcmp(buf, data, size) != 0) {
        abort();
    }
}

static void check_frame(const uint8_t *data, size_t size)
{
    uint32_t len;
    if (size < CODEC_FRAME_HEADER || codec_frame_length(data, &len) != 0 ||
        len > size - CODEC_FRAME_HEADER) {
        return;
    }
    (void)codec_frame_verify(data, data + CODEC_FRAME_HEADER);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_message(data, size);
    if (size == CODEC_HELLO_BYTES) {
        check_hello(data, size);
    }
    check_frame(data, size);
    return 0;
}
