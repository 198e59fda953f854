/*
 * errlog — the last ERRLOG_MAX failures of this process, for .acrfs/errors:
 * when, which file-system operation, on which path, and why.
 *
 * The FUSE edge feeds it from the logger's hook (every warning and error,
 * already redacted by common/log) with the operation and path of the request
 * the logging thread is serving, so the cause comes from where the context
 * is. Control characters in every field are escaped ("\n" -> "\x0a", and
 * "\\" -> "\\\\"), so one failure is always one line.
 *
 * One ring per process. Thread-safe; errlog_add never blocks for longer
 * than a copy of one entry and never logs.
 */
#ifndef ACRFS_ERRLOG_H
#define ACRFS_ERRLOG_H

#include <stdint.h>
#include <time.h>

#include "common/buf.h"

#define ERRLOG_MAX 100
#define ERRLOG_OP_MAX 16     /* field sizes, after escaping; longer ones are cut */
#define ERRLOG_PATH_MAX 512
#define ERRLOG_CAUSE_MAX 1024

/* Record one failure at time `when` (realtime). NULL fields are shown as "-". */
void errlog_add(time_t when, const char *op, const char *path, const char *cause);

/*
 * Append the failures held, oldest first, one per line:
 * "<UTC time, ISO 8601> <op> <path> <cause>\n". 0 or -ENOMEM.
 */
int errlog_render(struct buf *out);

/* Failures recorded since the start (also those the ring has dropped). */
uint64_t errlog_total(void);

#endif
