// tools/python: a sandboxed python3 interpreter that keeps its state across the calls
// of one trajectory (a notebook kernel). One sandbox = one long-lived child process
// running a small REPL driver (embedded in python.c) that talks to us over pipes with
// length-prefixed messages.
//
// Isolation: bubblewrap (--unshare-all: no network, own pid/ipc/uts namespaces;
// read-only system dirs; the only writable place is a private temporary directory,
// deleted on close) run as uid nobody so that RLIMIT_NPROC bounds fork bombs. Where
// bwrap is missing or cannot create namespaces, the fallback is unshare(2) (net, pid,
// mount, ipc, uts) plus a seccomp filter (no sockets except AF_UNIX, no ptrace, mount,
// kexec, bpf...), with a warning printed once. Limits: wall-clock timeout per call
// (kills and restarts the kernel: state is lost and the call reports a timeout),
// RLIMIT_AS/CPU/FSIZE/NPROC/NOFILE, and output truncated to a byte limit with a marker.
#pragma once
#include <stddef.h>
#include "base/error.h"

typedef struct pysb_opts {
    double timeout_s;       // wall clock per call (default 10)
    size_t mem_bytes;       // RLIMIT_AS (default 2 GiB)
    size_t fsize_bytes;     // RLIMIT_FSIZE (default 64 MiB)
    int nproc;              // RLIMIT_NPROC for the sandbox uid (default 64)
    size_t output_limit;    // bytes of captured stdout+stderr kept per call (default 16 KiB)
    const char *python;     // default /usr/bin/python3
    const char *mode;       // NULL/"auto": bwrap if it works, else unshare; "bwrap"; "unshare"
} pysb_opts;

void pysb_opts_default(pysb_opts *o);

typedef enum {
    PYSB_OK = 0,       // ran to the end
    PYSB_ERROR = 1,    // raised: error holds the traceback's last line
    PYSB_TIMEOUT = 2,  // killed after timeout_s; the kernel was restarted (state lost)
    PYSB_CRASH = 3,    // the interpreter died (os._exit, killed); restarted (state lost)
} pysb_status;

typedef struct pysb_result {
    pysb_status status;
    char *output;      // stdout+stderr (malloc'd, NUL-terminated), truncated with a marker
    size_t output_len;
    int truncated;
    char *error;       // last traceback line ("NameError: name 'x' is not defined"), or ""
    double seconds;
} pysb_result;

void pysb_result_free(pysb_result *r);
// The text a model sees: output, then the error line if any (the ToRA "output" block).
// malloc'd.
char *pysb_result_text(const pysb_result *r);

typedef struct pysb pysb;

pysb *pysb_open(const pysb_opts *o, tm_error *err);
// Runs code (like a notebook cell: a final expression's repr is printed). Returns 0 and
// fills *res (whatever the code did), or -1 if the sandbox itself could not run.
int pysb_run(pysb *sb, const char *code, pysb_result *res, tm_error *err);
// Forgets all state (restarts the kernel, empties its directory).
int pysb_reset(pysb *sb, tm_error *err);
// Kills the kernel and deletes its directory.
void pysb_close(pysb *sb);
// "bwrap" or "unshare": how this sandbox is isolated.
const char *pysb_mode(const pysb *sb);

// Runs calls on several sandboxes in parallel: sends all, then waits for all.
// sbs[k] runs codes[k]; res[k] gets the result. Returns 0, or -1 on a sandbox failure.
int pysb_run_many(pysb **sbs, const char **codes, pysb_result *res, int n, tm_error *err);

// A pool: n sandboxes, one per concurrent trajectory.
typedef struct pysb_pool {
    pysb **sb;
    int *busy;
    int n;
} pysb_pool;
int pysb_pool_open(pysb_pool *p, int n, const pysb_opts *o, tm_error *err);
// Takes a free sandbox (fresh state) or returns NULL if all are busy.
pysb *pysb_pool_acquire(pysb_pool *p);
// Returns it; its state is reset for the next trajectory.
int pysb_pool_release(pysb_pool *p, pysb *sb, tm_error *err);
void pysb_pool_close(pysb_pool *p);
