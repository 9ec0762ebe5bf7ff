/*
 * hmap: an open-addressing hash index of pointers (linear probing, backward-shift deletion).
 * The caller owns the items and supplies the hash and the key comparison; a slot costs 16 bytes,
 * which keeps a million-mailbox view well inside its memory budget (uthash's handle alone is 56
 * bytes an item, and an index needs two of them).
 */
#ifndef MQ_HMAP_H
#define MQ_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hmap_slot {
	uint64_t hash; /* 0 marks an empty slot; real hashes are forced non-zero */
	void *item;
};

struct hmap {
	struct hmap_slot *slots;
	size_t cap; /* a power of two, or 0 */
	size_t count;
};

/* Does item match key? */
typedef bool (*hmap_eq_fn)(const void *item, const void *key);

void hmap_init(struct hmap *m);
/* Free the index (not the items). */
void hmap_free(struct hmap *m);
/* Make room for n items without rehashing. */
void hmap_reserve(struct hmap *m, size_t n);
/* The item matching key under hash, or NULL. */
void *hmap_get(const struct hmap *m, uint64_t hash, const void *key, hmap_eq_fn eq);
/* Insert an item whose key is not present (checking is the caller's job). */
void hmap_insert(struct hmap *m, uint64_t hash, void *item);
/* Remove and return the item matching key, or NULL. */
void *hmap_remove(struct hmap *m, uint64_t hash, const void *key, hmap_eq_fn eq);

/* Seeded hashes for keys; each index derives its own seed when it is made (vindex: from the
   time, the process id and its address). */
uint64_t hmap_hash_bytes(const void *data, size_t len, uint64_t seed);
uint64_t hmap_hash_u64(uint64_t v, uint64_t seed);

#endif
