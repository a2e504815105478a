/* The embedded tracker's peer store and UDP (BEP 15) listener, in C.
 *
 * The same behaviour as holdfast/swarm/tracker.py (Tracker) and
 * holdfast/swarm/udp_tracker.py (UDPResponder): holdfast/swarm/fastpath.py wraps
 * `Store` as a Tracker, and `Listener` answers datagrams from a socket's file
 * descriptor until stopped. Both run holding the GIL except while waiting on the
 * socket, so every call into the store is atomic with respect to Python code.
 *
 * Swarms live in a dict (infohash bytes -> capsule of a Swarm). A swarm keeps its
 * peers in four arrays (IPv4 leechers, IPv4 seeders, IPv6 leechers, IPv6 seeders;
 * removal swaps the last peer into the hole, as tracker.py does) and an
 * open-addressing index from compact address to position. Each peer carries the
 * sequence number of its last announce, which orders expiry like tracker.py's
 * ordered dict.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

/* ------------------------------------------------------------------ BLAKE2b */

static const uint64_t B2_IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
    0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
    0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};

static const uint8_t B2_SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

static inline uint64_t rotr64(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

static inline uint64_t load64le(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

#define B2_G(a, b, c, d, x, y)          \
    do {                                \
        a = a + b + x;                  \
        d = rotr64(d ^ a, 32);          \
        c = c + d;                      \
        b = rotr64(b ^ c, 24);          \
        a = a + b + y;                  \
        d = rotr64(d ^ a, 16);          \
        c = c + d;                      \
        b = rotr64(b ^ c, 63);          \
    } while (0)

static void b2_compress(uint64_t h[8], const uint8_t block[128], uint64_t t, int last) {
    uint64_t m[16], v[16];
    for (int i = 0; i < 16; i++) m[i] = load64le(block + 8 * i);
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = B2_IV[i];
    }
    v[12] ^= t;
    if (last) v[14] = ~v[14];
    for (int r = 0; r < 12; r++) {
        const uint8_t *s = B2_SIGMA[r];
        B2_G(v[0], v[4], v[8], v[12], m[s[0]], m[s[1]]);
        B2_G(v[1], v[5], v[9], v[13], m[s[2]], m[s[3]]);
        B2_G(v[2], v[6], v[10], v[14], m[s[4]], m[s[5]]);
        B2_G(v[3], v[7], v[11], v[15], m[s[6]], m[s[7]]);
        B2_G(v[0], v[5], v[10], v[15], m[s[8]], m[s[9]]);
        B2_G(v[1], v[6], v[11], v[12], m[s[10]], m[s[11]]);
        B2_G(v[2], v[7], v[8], v[13], m[s[12]], m[s[13]]);
        B2_G(v[3], v[4], v[9], v[14], m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

/* The state after the key block of blake2b(key=key, digest_size=8). */
static void b2_keyed_state(uint64_t h[8], const uint8_t *key, size_t keylen) {
    uint8_t block[128];
    for (int i = 0; i < 8; i++) h[i] = B2_IV[i];
    h[0] ^= 0x01010000ULL ^ ((uint64_t)keylen << 8) ^ 8ULL;
    memset(block, 0, sizeof block);
    memcpy(block, key, keylen);
    b2_compress(h, block, 128, 0);
}

/* blake2b(window.to_bytes(8, "big") + ip, key, digest_size=8) from the keyed state. */
static void b2_mac(const uint64_t state[8], int64_t window, const uint8_t *ip, int iplen,
                   uint8_t out[8]) {
    uint8_t block[128];
    uint64_t h[8];
    memset(block, 0, sizeof block);
    uint64_t w = (uint64_t)window;
    for (int i = 0; i < 8; i++) block[i] = (uint8_t)(w >> (56 - 8 * i));
    memcpy(block + 8, ip, (size_t)iplen);
    memcpy(h, state, sizeof h);
    b2_compress(h, block, 128 + 8 + (uint64_t)iplen, 1);
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(h[0] >> (8 * i));
}

/* ------------------------------------------------------------------ helpers */

static inline uint32_t get32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t get64(const uint8_t *p) {
    return ((uint64_t)get32(p) << 32) | get32(p + 4);
}
static inline void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static double monotonic_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const uint8_t V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* ------------------------------------------------------------------ swarms */

typedef struct {
    uint8_t addr[18];
    uint8_t len; /* 6 or 18 */
    uint8_t group;
    double expires;
    uint64_t seq;
} Peer;

typedef struct {
    Peer *items;
    uint32_t n, cap;
} Group;

#define LOC_SLOT_BITS 30
#define LOC(group, slot) ((((uint32_t)(group)) << LOC_SLOT_BITS | (uint32_t)(slot)) + 1)
#define LOC_GROUP(loc) (((loc) - 1) >> LOC_SLOT_BITS)
#define LOC_SLOTOF(loc) (((loc) - 1) & ((1u << LOC_SLOT_BITS) - 1))

typedef struct {
    Group g[4];
    uint32_t *index; /* 0 empty, else LOC(group, slot) */
    uint32_t mask;   /* index size - 1 */
    uint32_t count;
    uint64_t completed;
    double last_sweep;
    PyObject *key; /* the infohash, owned */
} Swarm;

static const char *SWARM_CAPSULE = "holdfast.swarm._udpfast.Swarm";

static void swarm_free(Swarm *sw) {
    for (int i = 0; i < 4; i++) PyMem_RawFree(sw->g[i].items);
    PyMem_RawFree(sw->index);
    Py_XDECREF(sw->key);
    PyMem_RawFree(sw);
}

static void swarm_capsule_destructor(PyObject *capsule) {
    Swarm *sw = (Swarm *)PyCapsule_GetPointer(capsule, SWARM_CAPSULE);
    if (sw != NULL) swarm_free(sw);
}

typedef struct {
    PyObject_HEAD
    PyObject *swarms;    /* dict: infohash -> capsule */
    PyObject *changed;   /* set of infohashes */
    PyObject *undrained; /* dict: infohash -> int */
    PyObject *allowed;   /* AllowList, callable, or NULL (open) */
    int allow_mode;      /* 0 open, 1 AllowList (its _infohashes set), 2 callable */
    PyObject *clock;     /* callable or NULL (monotonic) */
    uint32_t interval, min_interval;
    double peer_expiry;
    Py_ssize_t max_swarms;
    uint32_t max_peers_per_swarm;
    Py_ssize_t max_peers;
    Py_ssize_t peer_count;
    uint32_t default_numwant, max_numwant;
    uint64_t seq;
    uint64_t hash_k0, hash_k1;
    uint64_t rng[2];
} Store;

static PyObject *str_infohashes; /* "_infohashes" */

static inline uint64_t addr_hash(const Store *s, const uint8_t *addr, int len) {
    uint64_t h = s->hash_k0;
    for (int i = 0; i < len; i++) {
        h ^= addr[i];
        h *= 0x100000001b3ULL;
    }
    h ^= s->hash_k1;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static inline uint64_t rng_next(Store *s) { /* xorshift128+ */
    uint64_t x = s->rng[0], y = s->rng[1];
    s->rng[0] = y;
    x ^= x << 23;
    s->rng[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
    return s->rng[1] + y;
}

static inline uint32_t rng_below(Store *s, uint32_t n) {
    return (uint32_t)(((unsigned __int128)rng_next(s) * n) >> 64);
}

static inline Peer *loc_peer(Swarm *sw, uint32_t loc) {
    return &sw->g[LOC_GROUP(loc)].items[LOC_SLOTOF(loc)];
}

/* Index position holding `addr`, or of the empty slot where it would go. */
static uint32_t index_find(const Store *s, Swarm *sw, const uint8_t *addr, int len) {
    uint32_t i = (uint32_t)addr_hash(s, addr, len) & sw->mask;
    for (;;) {
        uint32_t loc = sw->index[i];
        if (loc == 0) return i;
        Peer *p = loc_peer(sw, loc);
        if (p->len == len && memcmp(p->addr, addr, (size_t)len) == 0) return i;
        i = (i + 1) & sw->mask;
    }
}

static void index_delete_at(const Store *s, Swarm *sw, uint32_t i) {
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & sw->mask;
        uint32_t loc = sw->index[j];
        if (loc == 0) break;
        Peer *p = loc_peer(sw, loc);
        uint32_t k = (uint32_t)addr_hash(s, p->addr, p->len) & sw->mask;
        /* Move it back unless its home lies cyclically in (i, j]. */
        int stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            sw->index[i] = loc;
            i = j;
        }
    }
    sw->index[i] = 0;
}

static int index_grow(const Store *s, Swarm *sw) {
    uint32_t size = (sw->mask + 1) * 2;
    uint32_t *fresh = PyMem_RawCalloc(size, sizeof(uint32_t));
    if (fresh == NULL) return -1;
    PyMem_RawFree(sw->index);
    sw->index = fresh;
    sw->mask = size - 1;
    for (int g = 0; g < 4; g++)
        for (uint32_t k = 0; k < sw->g[g].n; k++) {
            Peer *p = &sw->g[g].items[k];
            sw->index[index_find(s, sw, p->addr, p->len)] = LOC(g, k);
        }
    return 0;
}

/* Append `peer` to its group; returns 0 or -1 (no memory). */
static int swarm_list(const Store *s, Swarm *sw, const Peer *peer) {
    Group *g = &sw->g[peer->group];
    if (g->n == g->cap) {
        uint32_t cap = g->cap ? g->cap * 2 : 4;
        Peer *items = PyMem_RawRealloc(g->items, cap * sizeof(Peer));
        if (items == NULL) return -1;
        g->items = items;
        g->cap = cap;
    }
    uint32_t slot = g->n++;
    g->items[slot] = *peer;
    sw->index[index_find(s, sw, peer->addr, peer->len)] = LOC(peer->group, slot);
    return 0;
}

/* Take the peer at `loc` out of its group (the last one moves into its place) and
 * out of the index. */
static void swarm_unlist(const Store *s, Swarm *sw, uint32_t loc) {
    uint32_t group = LOC_GROUP(loc), slot = LOC_SLOTOF(loc);
    Group *g = &sw->g[group];
    Peer *p = &g->items[slot];
    index_delete_at(s, sw, index_find(s, sw, p->addr, p->len));
    uint32_t last = g->n - 1;
    if (slot != last) {
        g->items[slot] = g->items[last];
        Peer *moved = &g->items[slot];
        sw->index[index_find(s, sw, moved->addr, moved->len)] = LOC(group, slot);
    }
    g->n--;
}

static int swarm_add(const Store *s, Swarm *sw, const Peer *peer) {
    if ((sw->count + 1) * 2 > sw->mask + 1 && index_grow(s, sw) < 0) return -1;
    if (swarm_list(s, sw, peer) < 0) return -1;
    sw->count++;
    return 0;
}

static void swarm_remove(const Store *s, Swarm *sw, const uint8_t *addr, int len) {
    uint32_t loc = sw->index[index_find(s, sw, addr, len)];
    if (loc == 0) return;
    swarm_unlist(s, sw, loc);
    sw->count--;
}

static inline uint32_t swarm_seeders(const Swarm *sw) { return sw->g[1].n + sw->g[3].n; }
static inline uint32_t swarm_leechers(const Swarm *sw) { return sw->g[0].n + sw->g[2].n; }

static Swarm *swarm_lookup(Store *s, PyObject *key) {
    PyObject *capsule = PyDict_GetItemWithError(s->swarms, key);
    if (capsule == NULL) return NULL;
    return (Swarm *)PyCapsule_GetPointer(capsule, SWARM_CAPSULE);
}

static Swarm *swarm_create(Store *s, PyObject *key, double now) {
    Swarm *sw = PyMem_RawCalloc(1, sizeof(Swarm));
    if (sw == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    sw->index = PyMem_RawCalloc(8, sizeof(uint32_t));
    if (sw->index == NULL) {
        PyMem_RawFree(sw);
        PyErr_NoMemory();
        return NULL;
    }
    sw->mask = 7;
    sw->last_sweep = now;
    Py_INCREF(key);
    sw->key = key;
    PyObject *capsule = PyCapsule_New(sw, SWARM_CAPSULE, swarm_capsule_destructor);
    if (capsule == NULL) {
        swarm_free(sw);
        return NULL;
    }
    int rc = PyDict_SetItem(s->swarms, key, capsule);
    Py_DECREF(capsule);
    return rc < 0 ? NULL : sw;
}

/* Drop a swarm from the table (frees it). */
static int swarm_drop(Store *s, Swarm *sw) {
    PyObject *key = sw->key;
    Py_INCREF(key);
    int rc = PyDict_DelItem(s->swarms, key);
    Py_DECREF(key);
    return rc;
}

static inline int mark_changed(Store *s, Swarm *sw) { return PySet_Add(s->changed, sw->key); }

static int add_completed(Store *s, PyObject *key) {
    PyObject *old = PyDict_GetItemWithError(s->undrained, key);
    long n = 0;
    if (old == NULL) {
        if (PyErr_Occurred()) return -1;
    } else {
        n = PyLong_AsLong(old);
    }
    PyObject *fresh = PyLong_FromLong(n + 1);
    if (fresh == NULL) return -1;
    int rc = PyDict_SetItem(s->undrained, key, fresh);
    Py_DECREF(fresh);
    return rc;
}

typedef struct {
    uint64_t seq;
    uint8_t addr[18];
    uint8_t len;
} Expired;

static int cmp_expired(const void *a, const void *b) {
    uint64_t x = ((const Expired *)a)->seq, y = ((const Expired *)b)->seq;
    return x < y ? -1 : x > y;
}

/* Drop the swarm's expired peers, oldest announce first; the swarm is freed (and
 * *gone set) when it empties. */
static int swarm_sweep(Store *s, Swarm *sw, double now, int *gone) {
    *gone = 0;
    sw->last_sweep = now;
    uint32_t n = 0;
    for (int g = 0; g < 4; g++)
        for (uint32_t k = 0; k < sw->g[g].n; k++)
            if (sw->g[g].items[k].expires <= now) n++;
    if (n) {
        Expired *list = PyMem_RawMalloc(n * sizeof(Expired));
        if (list == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        uint32_t at = 0;
        for (int g = 0; g < 4; g++)
            for (uint32_t k = 0; k < sw->g[g].n; k++) {
                Peer *p = &sw->g[g].items[k];
                if (p->expires <= now) {
                    list[at].seq = p->seq;
                    memcpy(list[at].addr, p->addr, p->len);
                    list[at].len = p->len;
                    at++;
                }
            }
        qsort(list, n, sizeof(Expired), cmp_expired);
        for (uint32_t k = 0; k < n; k++) swarm_remove(s, sw, list[k].addr, list[k].len);
        PyMem_RawFree(list);
        s->peer_count -= n;
        if (mark_changed(s, sw) < 0) return -1;
    }
    if (sw->count == 0) {
        *gone = 1;
        return swarm_drop(s, sw);
    }
    return 0;
}

static int store_forget(Store *s, PyObject *key) {
    Swarm *sw = swarm_lookup(s, key);
    if (sw == NULL) return PyErr_Occurred() ? -1 : 0;
    s->peer_count -= sw->count;
    if (mark_changed(s, sw) < 0) return -1;
    return swarm_drop(s, sw);
}

/* 1 allowed, 0 not, -1 error. */
static int store_allowed(Store *s, PyObject *key) {
    if (s->allow_mode == 0) return 1;
    if (s->allow_mode == 1) {
        PyObject *set = PyObject_GetAttr(s->allowed, str_infohashes);
        if (set == NULL) return -1;
        int rc = PySequence_Contains(set, key);
        Py_DECREF(set);
        return rc;
    }
    PyObject *r = PyObject_CallOneArg(s->allowed, key);
    if (r == NULL) return -1;
    int rc = PyObject_IsTrue(r);
    Py_DECREF(r);
    return rc;
}

static int store_now(Store *s, double *now) {
    if (s->clock == NULL) {
        *now = monotonic_now();
        return 0;
    }
    PyObject *r = PyObject_CallNoArgs(s->clock);
    if (r == NULL) return -1;
    *now = PyFloat_AsDouble(r);
    Py_DECREF(r);
    return (*now == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

typedef struct {
    uint32_t seeders, leechers;
    uint64_t completed;
    uint8_t *out4, *out6;   /* room for numwant + 1 entries each (or NULL if unwanted) */
    uint32_t n4, n6;        /* entries written */
} Answer;

/* Up to `numwant` random peers other than `addr`; seeders get only leechers. */
static int choose(Store *s, Swarm *sw, const uint8_t *addr, int len, int seeder,
                  uint32_t numwant, int want4, int want6, Answer *a) {
    a->n4 = a->n6 = 0;
    if (numwant == 0) return 0;
    int selected[4], ns = 0;
    if (want4) {
        selected[ns++] = 0;
        if (!seeder) selected[ns++] = 1;
    }
    if (want6) {
        selected[ns++] = 2;
        if (!seeder) selected[ns++] = 3;
    }
    uint64_t total = 0;
    for (int i = 0; i < ns; i++) total += sw->g[selected[i]].n;
    if (total == 0) return 0;
    if (total <= (uint64_t)numwant + 1) {
        for (int i = 0; i < ns; i++) {
            Group *g = &sw->g[selected[i]];
            for (uint32_t k = 0; k < g->n; k++) {
                Peer *p = &g->items[k];
                if (p->len == len && memcmp(p->addr, addr, (size_t)len) == 0) continue;
                if (p->len == 6) memcpy(a->out4 + 6 * a->n4++, p->addr, 6);
                else memcpy(a->out6 + 18 * a->n6++, p->addr, 18);
            }
        }
    } else {
        /* Floyd's sampling of numwant + 1 distinct positions, kept in a small set. */
        uint32_t k = numwant + 1, size = 16;
        while (size < 4 * k) size *= 2;
        uint32_t *set = PyMem_RawCalloc(size, sizeof(uint32_t));
        uint32_t *order = PyMem_RawMalloc(k * sizeof(uint32_t));
        if (set == NULL || order == NULL) {
            PyMem_RawFree(set);
            PyMem_RawFree(order);
            PyErr_NoMemory();
            return -1;
        }
        uint32_t taken = 0;
        for (uint64_t j = total - k; j < total; j++) {
            uint32_t t = rng_below(s, (uint32_t)j + 1);
            uint32_t pick = t;
            for (int pass = 0; pass < 2; pass++) {
                uint32_t h = (pick * 2654435761u) & (size - 1);
                int found = 0;
                while (set[h]) {
                    if (set[h] == pick + 1) {
                        found = 1;
                        break;
                    }
                    h = (h + 1) & (size - 1);
                }
                if (!found) {
                    set[h] = pick + 1;
                    order[taken++] = pick;
                    break;
                }
                pick = (uint32_t)j; /* t was taken: j never was */
            }
        }
        for (uint32_t i = 0; i < taken; i++) {
            uint32_t index = order[i];
            for (int gi = 0; gi < ns; gi++) {
                Group *g = &sw->g[selected[gi]];
                if (index < g->n) {
                    Peer *p = &g->items[index];
                    if (!(p->len == len && memcmp(p->addr, addr, (size_t)len) == 0)) {
                        if (p->len == 6) memcpy(a->out4 + 6 * a->n4++, p->addr, 6);
                        else memcpy(a->out6 + 18 * a->n6++, p->addr, 18);
                    }
                    break;
                }
                index -= g->n;
            }
        }
        PyMem_RawFree(set);
        PyMem_RawFree(order);
    }
    if (a->n4 + a->n6 > numwant) {
        if (a->n6) a->n6--;
        else a->n4--;
    }
    return 0;
}

#define REFUSED_ERROR ((const char *)1)

/* Tracker.announce: NULL when answered (in *a), a refusal reason, or REFUSED_ERROR
 * with a Python exception set. `ip` is 4 or 16 bytes; `left_negative` and
 * `seeder` come from the client's `left`. */
static const char *store_announce(Store *s, PyObject *key, const uint8_t *ip, int iplen,
                                  long port, int left_negative, int seeder, int event,
                                  uint32_t numwant, int want4, int want6, Answer *a) {
    if (port <= 0 || port >= 65536) return "invalid port";
    if (left_negative) return "invalid left";
    if (iplen == 16 && memcmp(ip, V4_MAPPED, 12) == 0) {
        ip += 12;
        iplen = 4;
    } else if (iplen != 4 && iplen != 16) {
        return "invalid address";
    }
    int allowed = store_allowed(s, key);
    if (allowed < 0) return REFUSED_ERROR;
    if (!allowed) {
        if (store_forget(s, key) < 0) return REFUSED_ERROR;
        return "unregistered torrent";
    }
    double now;
    if (store_now(s, &now) < 0) return REFUSED_ERROR;
    uint8_t addr[18];
    int len = iplen + 2;
    memcpy(addr, ip, (size_t)iplen);
    addr[iplen] = (uint8_t)(port >> 8);
    addr[iplen + 1] = (uint8_t)port;

    a->n4 = a->n6 = 0;
    Swarm *sw = swarm_lookup(s, key);
    if (sw == NULL && PyErr_Occurred()) return REFUSED_ERROR;
    if (sw != NULL && now - sw->last_sweep >= 1.0) {
        int gone;
        if (swarm_sweep(s, sw, now, &gone) < 0) return REFUSED_ERROR;
        if (gone) sw = NULL;
    }
    if (sw == NULL) {
        if (event == 3) {
            a->seeders = a->leechers = 0;
            a->completed = 0;
            return NULL;
        }
        if (PyDict_GET_SIZE(s->swarms) >= s->max_swarms) return "tracker is full, try later";
        sw = swarm_create(s, key, now);
        if (sw == NULL) return REFUSED_ERROR;
    }
    uint32_t where = index_find(s, sw, addr, len);
    uint32_t loc = sw->index[where];
    Peer *peer = loc ? loc_peer(sw, loc) : NULL;
    int changed = 0;
    if (event == 3) {
        if (peer != NULL) {
            swarm_unlist(s, sw, loc);
            sw->count--;
            s->peer_count--;
            changed = 1;
        }
        a->seeders = swarm_seeders(sw);
        a->leechers = swarm_leechers(sw);
        a->completed = sw->completed;
        if (changed) {
            if (mark_changed(s, sw) < 0) return REFUSED_ERROR;
            if (sw->count == 0 && swarm_drop(s, sw) < 0) return REFUSED_ERROR;
        }
        return NULL;
    }
    uint8_t group = (uint8_t)((len == 18 ? 2 : 0) | (seeder ? 1 : 0));
    if (event == 1 && (peer == NULL || !(peer->group & 1))) {
        sw->completed++;
        if (add_completed(s, sw->key) < 0) return REFUSED_ERROR;
        changed = 1;
    }
    if (peer == NULL) {
        if (sw->count < s->max_peers_per_swarm && s->peer_count < s->max_peers) {
            Peer fresh;
            memcpy(fresh.addr, addr, (size_t)len);
            fresh.len = (uint8_t)len;
            fresh.group = group;
            fresh.expires = now + s->peer_expiry;
            fresh.seq = ++s->seq;
            if (swarm_add(s, sw, &fresh) < 0) {
                PyErr_NoMemory();
                return REFUSED_ERROR;
            }
            s->peer_count++;
            changed = 1;
        }
    } else {
        peer->expires = now + s->peer_expiry;
        peer->seq = ++s->seq;
        if (peer->group != group) {
            Peer moved = *peer;
            moved.group = group;
            swarm_unlist(s, sw, loc);
            if (swarm_list(s, sw, &moved) < 0) {
                PyErr_NoMemory();
                return REFUSED_ERROR;
            }
            changed = 1;
        }
    }
    if (changed && mark_changed(s, sw) < 0) return REFUSED_ERROR;
    if (numwant > s->max_numwant) numwant = s->max_numwant;
    a->seeders = swarm_seeders(sw);
    a->leechers = swarm_leechers(sw);
    a->completed = sw->completed;
    if (sw->count == 0) {
        /* Full: the peer was not stored, and an empty swarm must not linger. */
        if (swarm_drop(s, sw) < 0) return REFUSED_ERROR;
        return NULL;
    }
    if (choose(s, sw, addr, len, seeder, numwant, want4, want6, a) < 0) return REFUSED_ERROR;
    return NULL;
}

/* ------------------------------------------------------------------ Store type */

static int Store_init(Store *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"is_allowed", "allow_mode", "interval", "min_interval",
                             "peer_expiry", "max_swarms", "max_peers_per_swarm", "max_peers",
                             "default_numwant", "max_numwant", "clock", NULL};
    PyObject *allowed, *clock;
    int mode;
    unsigned int interval, min_interval, max_per_swarm, default_numwant, max_numwant;
    double expiry;
    Py_ssize_t max_swarms, max_peers;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OiIIdnInIIO", kwlist, &allowed, &mode,
                                     &interval, &min_interval, &expiry, &max_swarms,
                                     &max_per_swarm, &max_peers, &default_numwant,
                                     &max_numwant, &clock))
        return -1;
    if (max_per_swarm >= (1u << LOC_SLOT_BITS)) {
        PyErr_SetString(PyExc_ValueError, "max_peers_per_swarm is too large");
        return -1;
    }
    self->swarms = PyDict_New();
    self->changed = PySet_New(NULL);
    self->undrained = PyDict_New();
    if (!self->swarms || !self->changed || !self->undrained) return -1;
    Py_INCREF(allowed);
    Py_XSETREF(self->allowed, allowed);
    self->allow_mode = mode;
    if (clock != Py_None) {
        Py_INCREF(clock);
        Py_XSETREF(self->clock, clock);
    }
    self->interval = interval;
    self->min_interval = min_interval;
    self->peer_expiry = expiry;
    self->max_swarms = max_swarms;
    self->max_peers_per_swarm = max_per_swarm;
    self->max_peers = max_peers;
    self->default_numwant = default_numwant;
    self->max_numwant = max_numwant;
    uint64_t seed[4];
    if (getrandom(seed, sizeof seed, 0) != sizeof seed) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->hash_k0 = seed[0];
    self->hash_k1 = seed[1];
    self->rng[0] = seed[2] | 1;
    self->rng[1] = seed[3];
    return 0;
}

static int Store_traverse(Store *self, visitproc visit, void *arg) {
    Py_VISIT(self->swarms);
    Py_VISIT(self->changed);
    Py_VISIT(self->undrained);
    Py_VISIT(self->allowed);
    Py_VISIT(self->clock);
    return 0;
}

static int Store_clear(Store *self) {
    Py_CLEAR(self->swarms);
    Py_CLEAR(self->changed);
    Py_CLEAR(self->undrained);
    Py_CLEAR(self->allowed);
    Py_CLEAR(self->clock);
    return 0;
}

static void Store_dealloc(Store *self) {
    PyObject_GC_UnTrack(self);
    Store_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int check_infohash(PyObject *key) {
    if (!PyBytes_CheckExact(key)) {
        PyErr_SetString(PyExc_TypeError, "infohash must be bytes");
        return -1;
    }
    return 0;
}

/* announce(infohash, ip, port, left, event, numwant, want_ipv4, want_ipv6)
 * -> (seeders, leechers, completed, peers4, peers6), or a refusal reason (str). */
static PyObject *Store_announce(Store *self, PyObject *args) {
    PyObject *key, *left_obj;
    Py_buffer ip;
    long port;
    int event, want4, want6;
    unsigned int numwant;
    if (!PyArg_ParseTuple(args, "Sy*lOiIpp", &key, &ip, &port, &left_obj, &event, &numwant,
                          &want4, &want6))
        return NULL;
    PyObject *result = NULL;
    if (PyBytes_GET_SIZE(key) != 20) {
        result = PyUnicode_FromString("info_hash must be 20 bytes");
        goto done;
    }
    int overflow;
    long long left = PyLong_AsLongLongAndOverflow(left_obj, &overflow);
    if (left == -1 && PyErr_Occurred()) goto done;
    int negative = overflow < 0 || (overflow == 0 && left < 0);
    int seeder = overflow == 0 && left == 0;
    uint32_t cap = numwant < self->max_numwant ? numwant : self->max_numwant;
    Answer a;
    a.out4 = PyMem_RawMalloc(((size_t)cap + 1) * 6);
    a.out6 = PyMem_RawMalloc(((size_t)cap + 1) * 18);
    if (a.out4 == NULL || a.out6 == NULL) {
        PyErr_NoMemory();
    } else {
        const char *refused = store_announce(self, key, ip.buf, (int)ip.len, port, negative,
                                             seeder, event, cap, want4, want6, &a);
        if (refused == REFUSED_ERROR) {
        } else if (refused != NULL) {
            result = PyUnicode_FromString(refused);
        } else {
            result = Py_BuildValue("(IIKy#y#)", a.seeders, a.leechers,
                                   (unsigned long long)a.completed, (const char *)a.out4,
                                   (Py_ssize_t)a.n4 * 6, (const char *)a.out6,
                                   (Py_ssize_t)a.n6 * 18);
        }
    }
    PyMem_RawFree(a.out4);
    PyMem_RawFree(a.out6);
done:
    PyBuffer_Release(&ip);
    return result;
}

/* stats(infohash) -> (seeders, leechers, completed) or None when no swarm. */
static PyObject *Store_stats(Store *self, PyObject *key) {
    if (check_infohash(key) < 0) return NULL;
    Swarm *sw = swarm_lookup(self, key);
    if (sw == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(IIK)", swarm_seeders(sw), swarm_leechers(sw),
                         (unsigned long long)sw->completed);
}

/* peers(infohash) -> list of (compact address, is seeder). */
static PyObject *Store_peers(Store *self, PyObject *key) {
    if (check_infohash(key) < 0) return NULL;
    PyObject *list = PyList_New(0);
    if (list == NULL) return NULL;
    Swarm *sw = swarm_lookup(self, key);
    if (sw == NULL) {
        if (PyErr_Occurred()) Py_CLEAR(list);
        return list;
    }
    for (int g = 0; g < 4; g++)
        for (uint32_t k = 0; k < sw->g[g].n; k++) {
            Peer *p = &sw->g[g].items[k];
            PyObject *item = Py_BuildValue("(y#O)", (const char *)p->addr, (Py_ssize_t)p->len,
                                           (g & 1) ? Py_True : Py_False);
            if (item == NULL || PyList_Append(list, item) < 0) {
                Py_XDECREF(item);
                Py_DECREF(list);
                return NULL;
            }
            Py_DECREF(item);
        }
    return list;
}

static PyObject *Store_forget(Store *self, PyObject *key) {
    if (check_infohash(key) < 0) return NULL;
    if (store_forget(self, key) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Store_expire(Store *self, PyObject *unused) {
    double now;
    if (store_now(self, &now) < 0) return NULL;
    Py_ssize_t before = self->peer_count;
    PyObject *keys = PyDict_Keys(self->swarms);
    if (keys == NULL) return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys); i++) {
        Swarm *sw = swarm_lookup(self, PyList_GET_ITEM(keys, i));
        int gone;
        if (sw == NULL) {
            if (PyErr_Occurred()) goto fail;
            continue;
        }
        if (swarm_sweep(self, sw, now, &gone) < 0) goto fail;
    }
    Py_DECREF(keys);
    return PyLong_FromSsize_t(before - self->peer_count);
fail:
    Py_DECREF(keys);
    return NULL;
}

/* drain() -> (changed set, undrained completions dict); both start afresh. */
static PyObject *Store_drain(Store *self, PyObject *unused) {
    PyObject *changed = PySet_New(NULL), *undrained = PyDict_New();
    if (changed == NULL || undrained == NULL) {
        Py_XDECREF(changed);
        Py_XDECREF(undrained);
        return NULL;
    }
    PyObject *result = PyTuple_Pack(2, self->changed, self->undrained);
    if (result == NULL) {
        Py_DECREF(changed);
        Py_DECREF(undrained);
        return NULL;
    }
    Py_SETREF(self->changed, changed);
    Py_SETREF(self->undrained, undrained);
    return result;
}

static PyObject *Store_set_allowed(Store *self, PyObject *args) {
    PyObject *allowed;
    int mode;
    if (!PyArg_ParseTuple(args, "Oi", &allowed, &mode)) return NULL;
    Py_INCREF(allowed);
    Py_XSETREF(self->allowed, allowed);
    self->allow_mode = mode;
    Py_RETURN_NONE;
}

static PyObject *Store_get_swarm_count(Store *self, void *closure) {
    return PyLong_FromSsize_t(PyDict_GET_SIZE(self->swarms));
}
static PyObject *Store_get_peer_count(Store *self, void *closure) {
    return PyLong_FromSsize_t(self->peer_count);
}

static PyMethodDef Store_methods[] = {
    {"announce", (PyCFunction)Store_announce, METH_VARARGS, NULL},
    {"stats", (PyCFunction)Store_stats, METH_O, NULL},
    {"peers", (PyCFunction)Store_peers, METH_O, NULL},
    {"forget", (PyCFunction)Store_forget, METH_O, NULL},
    {"expire", (PyCFunction)Store_expire, METH_NOARGS, NULL},
    {"drain", (PyCFunction)Store_drain, METH_NOARGS, NULL},
    {"set_allowed", (PyCFunction)Store_set_allowed, METH_VARARGS, NULL},
    {NULL}};

static PyGetSetDef Store_getset[] = {
    {"swarm_count", (getter)Store_get_swarm_count, NULL, NULL, NULL},
    {"peer_count", (getter)Store_get_peer_count, NULL, NULL, NULL},
    {NULL}};

static PyTypeObject StoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "holdfast.swarm._udpfast.Store",
    .tp_basicsize = sizeof(Store),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Store_init,
    .tp_dealloc = (destructor)Store_dealloc,
    .tp_traverse = (traverseproc)Store_traverse,
    .tp_clear = (inquiry)Store_clear,
    .tp_methods = Store_methods,
    .tp_getset = Store_getset,
};

/* ------------------------------------------------------------------ Listener */

#define BATCH 64
#define IN_SIZE 2048 /* as udp_tracker.py's recvfrom(2048): longer datagrams are cut */
#define OUT_SIZE 4096
#define MAX_PEERS_IPV4 200
#define MAX_PEERS_IPV6 74
#define MAX_SCRAPE_HASHES 74
#define CID_CACHE 4096

typedef struct {
    uint8_t ip[16];
    uint8_t len;
    int64_t window;
    uint8_t current[8], previous[8];
} CidEntry;

typedef struct {
    PyObject_HEAD
    Store *store;
    int fd;
    double lifetime;
    uint64_t keyed[8];
    volatile int stopping;
    CidEntry *cids;
} Listener;

static int Listener_init(Listener *self, PyObject *args, PyObject *kwds) {
    PyObject *store;
    Py_buffer key;
    int fd;
    double lifetime;
    if (!PyArg_ParseTuple(args, "O!iy*d", &StoreType, &store, &fd, &key, &lifetime)) return -1;
    if (key.len < 1 || key.len > 64 || lifetime <= 0) {
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "need a key of 1 to 64 bytes and a positive lifetime");
        return -1;
    }
    b2_keyed_state(self->keyed, key.buf, (size_t)key.len);
    PyBuffer_Release(&key);
    Py_INCREF(store);
    Py_XSETREF(self->store, (Store *)store);
    self->fd = fd;
    self->lifetime = lifetime;
    if (self->cids == NULL) {
        self->cids = PyMem_RawCalloc(CID_CACHE, sizeof(CidEntry));
        if (self->cids == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    return 0;
}

static void Listener_dealloc(Listener *self) {
    Py_XDECREF(self->store);
    PyMem_RawFree(self->cids);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* This window's and the last window's ids for `ip`, cached per address. */
static CidEntry *cid_entry(Listener *L, const uint8_t *ip, int iplen, int64_t window) {
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < iplen; i++) h = (h ^ ip[i]) * 0x100000001b3ULL;
    CidEntry *e = &L->cids[(h ^ (h >> 29)) & (CID_CACHE - 1)];
    int same = e->len == iplen && memcmp(e->ip, ip, (size_t)iplen) == 0;
    if (same && e->window == window) return e;
    if (same && e->window == window - 1) {
        memcpy(e->previous, e->current, 8);
    } else {
        b2_mac(L->keyed, window - 1, ip, iplen, e->previous);
        memcpy(e->ip, ip, (size_t)iplen);
        e->len = (uint8_t)iplen;
    }
    b2_mac(L->keyed, window, ip, iplen, e->current);
    e->window = window;
    return e;
}

static inline int same8(const uint8_t *a, const uint8_t *b) {
    uint8_t d = 0;
    for (int i = 0; i < 8; i++) d |= a[i] ^ b[i];
    return d == 0;
}

static int error_reply(uint8_t *out, const uint8_t *tid, const char *message, int limit) {
    int n = 8 + (int)strlen(message);
    put32(out, 3);
    memcpy(out + 4, tid, 4);
    memcpy(out + 8, message, strlen(message));
    return n < limit ? n : limit;
}

/* The answer to one datagram in `out`; its length, or -1 for no answer. */
static int answer(Listener *L, const uint8_t *data, int size, const uint8_t *ip, int iplen,
                  int64_t window, uint8_t *out) {
    if (size < 16) return -1;
    uint32_t action = get32(data + 8);
    const uint8_t *tid = data + 12;
    CidEntry *ids = cid_entry(L, ip, iplen, window);
    if (action == 0) {
        if (get64(data) != 0x41727101980ULL) return error_reply(out, tid, "bad protocol id", size);
        put32(out, 0);
        memcpy(out + 4, tid, 4);
        memcpy(out + 8, ids->current, 8);
        return 16;
    }
    if (!same8(data, ids->current) && !same8(data, ids->previous))
        return error_reply(out, tid, "invalid connection id", size);
    Store *s = L->store;
    if (action == 1) {
        if (size < 98) return error_reply(out, tid, "malformed announce", size);
        uint32_t event = get32(data + 80);
        if (event > 3) return error_reply(out, tid, "invalid event", 1024);
        uint64_t left = get64(data + 64);
        int32_t numwant = (int32_t)get32(data + 92);
        long port = ((long)data[96] << 8) | data[97];
        int ipv4 = iplen == 4 || memcmp(ip, V4_MAPPED, 12) == 0;
        uint32_t limit = ipv4 ? MAX_PEERS_IPV4 : MAX_PEERS_IPV6;
        uint32_t want = numwant >= 0 ? (uint32_t)numwant : s->default_numwant;
        if (want > limit) want = limit;
        if (want > s->max_numwant) want = s->max_numwant;
        PyObject *key = PyBytes_FromStringAndSize((const char *)data + 16, 20);
        if (key == NULL) return -2;
        Answer a;
        /* room for want + 1 entries after the 20-byte header */
        a.out4 = out + 20;
        a.out6 = out + 20;
        const char *refused = store_announce(s, key, ip, iplen, port, 0, left == 0, (int)event,
                                             want, ipv4, !ipv4, &a);
        Py_DECREF(key);
        if (refused == REFUSED_ERROR) return -2;
        if (refused != NULL) return error_reply(out, tid, refused, 1024);
        put32(out, 1);
        memcpy(out + 4, tid, 4);
        put32(out + 8, s->interval);
        put32(out + 12, a.leechers);
        put32(out + 16, a.seeders);
        return 20 + (int)(ipv4 ? a.n4 * 6 : a.n6 * 18);
    }
    if (action == 2) {
        int count = (size - 16) / 20, rest = (size - 16) % 20;
        if (count == 0 || rest) return error_reply(out, tid, "malformed scrape", size);
        if (count > MAX_SCRAPE_HASHES) return error_reply(out, tid, "too many infohashes", 1024);
        put32(out, 2);
        memcpy(out + 4, tid, 4);
        for (int i = 0; i < count; i++) {
            uint8_t *entry = out + 8 + 12 * i;
            memset(entry, 0, 12);
            PyObject *key = PyBytes_FromStringAndSize((const char *)data + 16 + 20 * i, 20);
            if (key == NULL) return -2;
            Swarm *sw = swarm_lookup(s, key);
            Py_DECREF(key);
            if (sw == NULL) {
                if (PyErr_Occurred()) return -2;
                continue;
            }
            put32(entry, swarm_seeders(sw));
            put32(entry + 4, (uint32_t)sw->completed);
            put32(entry + 8, swarm_leechers(sw));
        }
        return 8 + 12 * count;
    }
    return error_reply(out, tid, "unknown action", size);
}

static PyObject *Listener_serve(Listener *self, PyObject *unused) {
    struct mmsghdr *in = PyMem_RawCalloc(BATCH, sizeof(struct mmsghdr));
    struct mmsghdr *out = PyMem_RawCalloc(BATCH, sizeof(struct mmsghdr));
    struct iovec *iov_in = PyMem_RawCalloc(BATCH, sizeof(struct iovec));
    struct iovec *iov_out = PyMem_RawCalloc(BATCH, sizeof(struct iovec));
    struct sockaddr_storage *from = PyMem_RawCalloc(BATCH, sizeof(struct sockaddr_storage));
    uint8_t *inbuf = PyMem_RawMalloc((size_t)BATCH * IN_SIZE);
    uint8_t *outbuf = PyMem_RawMalloc((size_t)BATCH * OUT_SIZE);
    PyObject *result = NULL;
    if (!in || !out || !iov_in || !iov_out || !from || !inbuf || !outbuf) {
        PyErr_NoMemory();
        goto done;
    }
    for (int i = 0; i < BATCH; i++) {
        iov_in[i].iov_base = inbuf + (size_t)i * IN_SIZE;
        iov_in[i].iov_len = IN_SIZE;
        in[i].msg_hdr.msg_iov = &iov_in[i];
        in[i].msg_hdr.msg_iovlen = 1;
        in[i].msg_hdr.msg_name = &from[i];
        iov_out[i].iov_base = outbuf + (size_t)i * OUT_SIZE;
    }
    /* A blocking socket (with SO_RCVTIMEO so that stop() is noticed) takes one
     * system call per batch: wait for one datagram, then take what else is queued. */
    int nonblocking = (fcntl(self->fd, F_GETFL) & O_NONBLOCK) != 0;
    Py_INCREF(self); /* the store and buffers outlive stop() */
    while (!self->stopping) {
        int n;
        for (int i = 0; i < BATCH; i++) in[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        Py_BEGIN_ALLOW_THREADS
        n = recvmmsg(self->fd, in, BATCH, nonblocking ? MSG_DONTWAIT : MSG_WAITFORONE, NULL);
        if (n < 0 && nonblocking && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {self->fd, POLLIN, 0};
            if (poll(&p, 1, 250) > 0) n = recvmmsg(self->fd, in, BATCH, MSG_DONTWAIT, NULL);
        }
        Py_END_ALLOW_THREADS
        if (n < 0) {
            if (errno == EBADF || errno == ENOTSOCK) break; /* closed under us */
            if (errno == EINTR && PyErr_CheckSignals() < 0) break;
            continue; /* an ICMP error for an earlier answer, or nothing yet */
        }
        if (n == 0 || self->stopping) continue;
        int64_t window = (int64_t)floor(wall_now() / self->lifetime);
        int m = 0;
        for (int i = 0; i < n; i++) {
            struct sockaddr_storage *sa = &from[i];
            const uint8_t *ip;
            int iplen;
            if (sa->ss_family == AF_INET) {
                ip = (const uint8_t *)&((struct sockaddr_in *)sa)->sin_addr;
                iplen = 4;
            } else if (sa->ss_family == AF_INET6) {
                ip = (const uint8_t *)&((struct sockaddr_in6 *)sa)->sin6_addr;
                iplen = 16;
            } else {
                continue;
            }
            uint8_t *reply = outbuf + (size_t)m * OUT_SIZE;
            int len = answer(self, inbuf + (size_t)i * IN_SIZE, (int)in[i].msg_len, ip, iplen,
                             window, reply);
            if (len == -2) {
                PyErr_WriteUnraisable((PyObject *)self);
                continue;
            }
            if (len < 0) continue;
            iov_out[m].iov_len = (size_t)len;
            out[m].msg_hdr.msg_iov = &iov_out[m];
            out[m].msg_hdr.msg_iovlen = 1;
            out[m].msg_hdr.msg_name = sa;
            out[m].msg_hdr.msg_namelen = in[i].msg_hdr.msg_namelen;
            m++;
        }
        if (m == 0) continue;
        Py_BEGIN_ALLOW_THREADS
        int sent = 0;
        while (sent < m) {
            int k = sendmmsg(self->fd, out + sent, (unsigned)(m - sent), MSG_DONTWAIT);
            if (k < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EBADF) break;
                k = 1; /* this one failed (unreachable, ...): skip it */
            }
            sent += k;
        }
        Py_END_ALLOW_THREADS
    }
    Py_DECREF(self);
    if (!PyErr_Occurred()) {
        Py_INCREF(Py_None);
        result = Py_None;
    }
done:
    PyMem_RawFree(in);
    PyMem_RawFree(out);
    PyMem_RawFree(iov_in);
    PyMem_RawFree(iov_out);
    PyMem_RawFree(from);
    PyMem_RawFree(inbuf);
    PyMem_RawFree(outbuf);
    return result;
}

static PyObject *Listener_stop(Listener *self, PyObject *unused) {
    self->stopping = 1;
    Py_RETURN_NONE;
}

/* answer(datagram, packed ip) -> bytes or None: the listener's answer, without a socket. */
static PyObject *Listener_answer(Listener *self, PyObject *args) {
    Py_buffer data, ip;
    if (!PyArg_ParseTuple(args, "y*y*", &data, &ip)) return NULL;
    PyObject *result = NULL;
    uint8_t out[OUT_SIZE];
    if (ip.len != 4 && ip.len != 16) {
        PyErr_SetString(PyExc_ValueError, "ip must be 4 or 16 bytes");
    } else {
        int size = data.len > IN_SIZE ? IN_SIZE : (int)data.len;
        int64_t window = (int64_t)floor(wall_now() / self->lifetime);
        int len = answer(self, data.buf, size, ip.buf, (int)ip.len, window, out);
        if (len == -2) {
        } else if (len < 0) {
            Py_INCREF(Py_None);
            result = Py_None;
        } else {
            result = PyBytes_FromStringAndSize((const char *)out, len);
        }
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&ip);
    return result;
}

static PyMethodDef Listener_methods[] = {
    {"serve", (PyCFunction)Listener_serve, METH_NOARGS, NULL},
    {"stop", (PyCFunction)Listener_stop, METH_NOARGS, NULL},
    {"answer", (PyCFunction)Listener_answer, METH_VARARGS, NULL},
    {NULL}};

static PyTypeObject ListenerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "holdfast.swarm._udpfast.Listener",
    .tp_basicsize = sizeof(Listener),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Listener_init,
    .tp_dealloc = (destructor)Listener_dealloc,
    .tp_methods = Listener_methods,
};

/* mac(key, window, ip) -> 8 bytes: for checking the BLAKE2b against hashlib. */
static PyObject *module_mac(PyObject *mod, PyObject *args) {
    Py_buffer key, ip;
    long long window;
    if (!PyArg_ParseTuple(args, "y*Ly*", &key, &window, &ip)) return NULL;
    PyObject *result = NULL;
    if (key.len < 1 || key.len > 64 || ip.len > 100) {
        PyErr_SetString(PyExc_ValueError, "bad key or ip length");
    } else {
        uint64_t state[8];
        uint8_t out[8];
        b2_keyed_state(state, key.buf, (size_t)key.len);
        b2_mac(state, window, ip.buf, (int)ip.len, out);
        result = PyBytes_FromStringAndSize((const char *)out, 8);
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&ip);
    return result;
}

static PyMethodDef module_methods[] = {{"mac", module_mac, METH_VARARGS, NULL}, {NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_udpfast", .m_size = -1, .m_methods = module_methods};

PyMODINIT_FUNC PyInit__udpfast(void) {
    str_infohashes = PyUnicode_InternFromString("_infohashes");
    if (str_infohashes == NULL) return NULL;
    if (PyType_Ready(&StoreType) < 0 || PyType_Ready(&ListenerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&StoreType);
    Py_INCREF(&ListenerType);
    if (PyModule_AddObject(m, "Store", (PyObject *)&StoreType) < 0 ||
        PyModule_AddObject(m, "Listener", (PyObject *)&ListenerType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
