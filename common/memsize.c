#include "common/memsize.h"

#include <malloc.h>

size_t mem_size(const void *p)
{
	return p ? malloc_usable_size((void *)p) + MEM_CHUNK_OVERHEAD : 0;
}
