/*
 * memsize — what a heap allocation costs, for memory budgets
 * (image/budget.h) and the figures of .acrfs/status.
 *
 * mem_size(p) is malloc_usable_size(p) plus MEM_CHUNK_OVERHEAD, glibc's
 * chunk header: close to what the allocation takes from the heap (under
 * ASan, what the sanitizer's allocator says). 0 for NULL. Thread-safe.
 */
#ifndef ACRFS_MEMSIZE_H
#define ACRFS_MEMSIZE_H

#include <stddef.h>

#define MEM_CHUNK_OVERHEAD 8

size_t mem_size(const void *p);

#endif
