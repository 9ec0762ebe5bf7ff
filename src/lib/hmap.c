/*
 * hmap: see the header. Never allocates per item; grows by doubling at 70 % load. It must never
 * lose an item on removal: backward-shift deletion keeps every probe chain unbroken.
 */
#include "hmap.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void hmap_init(struct hmap *m)
{
	m->slots = NULL;
	m->cap = 0;
	m->count = 0;
}

void hmap_free(struct hmap *m)
{
	free(m->slots);
	hmap_init(m);
}

static uint64_t fix(uint64_t h)
{
	return h == 0 ? 1 : h;
}

static void place(struct hmap_slot *slots, size_t cap, uint64_t hash, void *item)
{
	size_t i = (size_t)hash & (cap - 1);
	while (slots[i].hash != 0)
		i = (i + 1) & (cap - 1);
	slots[i].hash = hash;
	slots[i].item = item;
}

static void grow(struct hmap *m, size_t cap)
{
	struct hmap_slot *slots = xcalloc(cap, sizeof(*slots));
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].hash != 0)
			place(slots, cap, m->slots[i].hash, m->slots[i].item);
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
}

void hmap_reserve(struct hmap *m, size_t n)
{
	size_t cap = m->cap == 0 ? 16 : m->cap;
	/* keep the load under 70 %: n < cap * 7 / 10 */
	while (n >= cap / 10 * 7)
		cap *= 2;
	if (cap != m->cap)
		grow(m, cap);
}

void *hmap_get(const struct hmap *m, uint64_t hash, const void *key, hmap_eq_fn eq)
{
	if (m->cap == 0)
		return NULL;
	hash = fix(hash);
	for (size_t i = (size_t)hash & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->slots[i].hash == 0)
			return NULL;
		if (m->slots[i].hash == hash && eq(m->slots[i].item, key))
			return m->slots[i].item;
	}
}

void hmap_insert(struct hmap *m, uint64_t hash, void *item)
{
	hmap_reserve(m, m->count + 1);
	place(m->slots, m->cap, fix(hash), item);
	m->count++;
}

void *hmap_remove(struct hmap *m, uint64_t hash, const void *key, hmap_eq_fn eq)
{
	if (m->cap == 0)
		return NULL;
	hash = fix(hash);
	size_t mask = m->cap - 1, i;
	for (i = (size_t)hash & mask;; i = (i + 1) & mask) {
		if (m->slots[i].hash == 0)
			return NULL;
		if (m->slots[i].hash == hash && eq(m->slots[i].item, key))
			break;
	}
	void *item = m->slots[i].item;
	/* backward shift: pull later members of the chain into the hole when that does not move
	   them before their home slot */
	size_t hole = i;
	for (size_t j = (i + 1) & mask; m->slots[j].hash != 0; j = (j + 1) & mask) {
		size_t home = (size_t)m->slots[j].hash & mask;
		/* j may move to hole if home is not in the cyclic range (hole, j] */
		bool in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
		if (!in_range) {
			m->slots[hole] = m->slots[j];
			hole = j;
		}
	}
	m->slots[hole].hash = 0;
	m->slots[hole].item = NULL;
	m->count--;
	return item;
}

static uint64_t mix(uint64_t x)
{
	/* splitmix64 finaliser */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

uint64_t hmap_hash_bytes(const void *data, size_t len, uint64_t seed)
{
	/* FNV-1a over the bytes, seeded, then mixed so low bits are good for masking */
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return mix(h ^ len);
}

uint64_t hmap_hash_u64(uint64_t v, uint64_t seed)
{
	return mix(v ^ seed);
}
