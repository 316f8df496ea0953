/*
 * app.c - the application state machine every simulated node runs.
 *
 * It is deliberately tiny but history-sensitive: a hash chain over every
 * applied entry (so equal chains mean equal histories) and a register file
 * written by proposals (so reads return something). Its snapshot format
 * carries a checksum and padding, so that snapshots span several
 * InstallSnapshot chunks and a torn or misassembled one is caught.
 *
 * Snapshot layout (little endian):
 *   u32 magic "BSNP" | u64 applied | u64 applied_term | u64 chain |
 *   SIM_APP_SLOTS x u64 slots | u32 conf_len | conf bytes |
 *   u32 filler_len | filler bytes (derived from chain) | u64 checksum
 */
#include <string.h>

#include "sim.h"

#define SNAP_MAGIC 0x504e5342u /* "BSNP" */
#define PROP_MAGIC 0x4d495342u /* "BSIM" */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        v |= (uint32_t)p[i] << (8 * i);
    }
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

void app_init(struct sim_app *app, uint32_t filler)
{
    memset(app, 0, sizeof(*app));
    app->filler = filler;
}

uint64_t sim_entry_hash(const struct raft_entry *e)
{
    uint64_t h = sim_hash_bytes(e->data, e->len, e->type);
    return sim_mix64(h ^ e->type);
}

uint64_t app_chain_next(uint64_t chain, const struct raft_entry *e)
{
    uint64_t h = sim_mix64(chain ^ sim_entry_hash(e));
    h = sim_mix64(h ^ e->index);
    return sim_mix64(h ^ e->term);
}

void app_apply(struct sim_app *app, const struct raft_entry *e)
{
    app->chain = app_chain_next(app->chain, e);
    app->applied = e->index;
    app->applied_term = e->term;
    if (e->type == RAFT_ENTRY_CONF) {
        struct raft_conf conf;
        if (raft_conf_decode(e->data, e->len, &conf) == 0) {
            app->conf = conf;
        }
        return;
    }
    unsigned slot;
    uint64_t pid = sim_proposal_pid(e, &slot);
    if (pid != 0) {
        app->slots[slot] = pid;
    }
}

static uint32_t conf_len(const struct sim_app *app)
{
    uint8_t buf[RAFT_CONF_ENCODED_MAX];
    size_t len = 0;
    if (app->conf.n > 0) {
        raft_conf_encode(&app->conf, buf, &len);
    }
    return (uint32_t)len;
}

size_t app_encoded_size(const struct sim_app *app)
{
    return 4 + 8 + 8 + 8 + 8 * SIM_APP_SLOTS + 4 + conf_len(app) + 4 +
           app->filler + 8;
}

void app_encode(const struct sim_app *app, uint8_t *buf)
{
    uint8_t *p = buf;
    put32(p, SNAP_MAGIC);
    p += 4;
    put64(p, app->applied);
    p += 8;
    put64(p, app->applied_term);
    p += 8;
    put64(p, app->chain);
    p += 8;
    for (int i = 0; i < SIM_APP_SLOTS; i++) {
        put64(p, app->slots[i]);
        p += 8;
    }
    uint8_t conf[RAFT_CONF_ENCODED_MAX];
    size_t clen = 0;
    if (app->conf.n > 0) {
        raft_conf_encode(&app->conf, conf, &clen);
    }
    put32(p, (uint32_t)clen);
    p += 4;
    memcpy(p, conf, clen);
    p += clen;
    put32(p, app->filler);
    p += 4;
    for (uint32_t i = 0; i < app->filler; i++) {
        *p++ = (uint8_t)sim_mix64(app->chain + i);
    }
    put64(p, sim_hash_bytes(buf, (size_t)(p - buf), SNAP_MAGIC));
}

int app_decode(struct sim_app *app, const uint8_t *buf, size_t len)
{
    struct sim_app tmp;
    const size_t fixed = 4 + 8 + 8 + 8 + 8 * SIM_APP_SLOTS + 4;
    if (len < fixed + 4 + 8 || get32(buf) != SNAP_MAGIC) {
        return -1;
    }
    if (get64(buf + len - 8) != sim_hash_bytes(buf, len - 8, SNAP_MAGIC)) {
        return -1;
    }
    memset(&tmp, 0, sizeof(tmp));
    const uint8_t *p = buf + 4;
    tmp.applied = get64(p);
    p += 8;
    tmp.applied_term = get64(p);
    p += 8;
    tmp.chain = get64(p);
    p += 8;
    for (int i = 0; i < SIM_APP_SLOTS; i++) {
        tmp.slots[i] = get64(p);
        p += 8;
    }
    uint32_t clen = get32(p);
    p += 4;
    if (clen > len - fixed - 4 - 8) {
        return -1;
    }
    if (clen > 0 && raft_conf_decode(p, clen, &tmp.conf) != 0) {
        return -1;
    }
    p += clen;
    tmp.filler = get32(p);
    p += 4;
    if ((size_t)(p - buf) + tmp.filler + 8 != len) {
        return -1;
    }
    for (uint32_t i = 0; i < tmp.filler; i++) {
        if (p[i] != (uint8_t)sim_mix64(tmp.chain + i)) {
            return -1;
        }
    }
    tmp.filler = app->filler;
    *app = tmp;
    return 0;
}

uint32_t sim_proposal_encode(uint64_t salt, uint64_t pid, uint8_t *buf)
{
    uint64_t h = sim_mix64(salt ^ pid);
    uint32_t extra = (uint32_t)(h % (SIM_PROPOSAL_MAX - 13 + 1));
    put32(buf, PROP_MAGIC);
    put64(buf + 4, pid);
    buf[12] = (uint8_t)((h >> 32) % SIM_APP_SLOTS);
    for (uint32_t i = 0; i < extra; i++) {
        buf[13 + i] = (uint8_t)sim_mix64(h + i);
    }
    return 13 + extra;
}

uint64_t sim_proposal_pid(const struct raft_entry *e, unsigned *slot)
{
    if (e->type != RAFT_ENTRY_NORMAL || e->len < 13 ||
        get32(e->data) != PROP_MAGIC) {
        return 0;
    }
    *slot = e->data[12] % SIM_APP_SLOTS;
    return get64(e->data + 4);
}
