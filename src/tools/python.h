// tools/python: a sandboxed python3 interpreter that keeps its state across the calls
// of one trajectory (a notebook kernel). One sandbox = one long-lived child process
// running a small REPL driver (embedded in python.c) that talks to us over a socket
// with length-prefixed messages.
//
// Isolation: bubblewrap (--unshare-all: no network, own pid/ipc/uts namespaces), or,
// where bwrap is missing or cannot create namespaces, the fallback: unshare(2) (net,
// pid, mount, ipc, uts; needs root) with a warning printed once. Both modes show the
// same minimal filesystem: read-only /usr (and the /bin, /lib links), a few /etc files,
// five device nodes, a fresh /proc, and size-limited tmpfs /tmp and /dev/shm (half of
// mem_bytes each) that die with the kernel. Both load one seccomp filter (no sockets
// but AF_UNIX; no ptrace, mount, namespaces, clone3, io_uring, new mount API, bpf...).
// As root every sandbox runs as a uid of its own (from 0x70000000 + [0, 2^24)), so the
// RLIMIT_NPROC fork-bomb bound is per sandbox; without root all share the caller's uid.
// Limits: wall-clock timeout per call, sending the code included (kills the kernel:
// state is lost, the call reports a timeout, the next call starts a fresh kernel);
// RLIMIT_AS/CPU/FSIZE/NPROC/NOFILE; code size (max_code_bytes); output truncated to a
// byte limit with a marker. Code and output are carried with their lengths: NUL bytes
// pass through. Each call carries a random token that its reply must echo, and bytes
// written between calls are refused, so code cannot desynchronize later calls by writing
// on the protocol channel (it can still forge its own call's reply: see README,
// "Security model of the python tool").
#pragma once
#include <stddef.h>
#include "base/error.h"

typedef struct pysb_opts {
    double timeout_s;       // wall clock per call (default 10)
    size_t mem_bytes;       // RLIMIT_AS (default 2 GiB)
    size_t fsize_bytes;     // RLIMIT_FSIZE (default 64 MiB)
    int nproc;              // RLIMIT_NPROC for the sandbox's uid (default 64)
    size_t output_limit;    // bytes of captured stdout+stderr kept per call (default 16 KiB)
    size_t max_code_bytes;  // longest code accepted per call (default 1 MiB)
    const char *python;     // default /usr/bin/python3
    const char *mode;       // NULL/"auto": bwrap if it works, else unshare; "bwrap"; "unshare"
} pysb_opts;

// The ranges pysb_opts_check accepts (the CLI flags' ranges).
#define PYSB_MAX_TIMEOUT 86400
#define PYSB_MIN_MEM_MB 32
#define PYSB_MAX_MEM_MB (1 << 20)
#define PYSB_MAX_OUTPUT (1 << 30)
#define PYSB_MAX_CODE (1 << 30)

void pysb_opts_default(pysb_opts *o);
// 0, or -1 with a message naming the option (as its CLI flag) and its allowed range.
// pysb_open checks too.
int pysb_opts_check(const pysb_opts *o, tm_error *err);

typedef enum {
    PYSB_OK = 0,       // ran to the end
    PYSB_ERROR = 1,    // raised: error holds the traceback's last line
    PYSB_TIMEOUT = 2,  // killed after timeout_s; the kernel was restarted (state lost)
    PYSB_CRASH = 3,    // the interpreter died (os._exit, killed); restarted (state lost)
} pysb_status;

typedef struct pysb_result {
    pysb_status status;
    char *output;      // stdout+stderr (malloc'd, NUL-terminated, may hold NULs), truncated with a marker
    size_t output_len;
    int truncated;
    char *error;       // last traceback line ("NameError: name 'x' is not defined"), or ""
    size_t error_len;
    double seconds;
} pysb_result;

void pysb_result_free(pysb_result *r);
// The text a model sees: output, then the error line if any (the ToRA "output" block).
// malloc'd, NUL-terminated; the _n form also gives its length (the output may hold NULs).
char *pysb_result_text(const pysb_result *r);
char *pysb_result_text_n(const pysb_result *r, size_t *len);

typedef struct pysb pysb;

pysb *pysb_open(const pysb_opts *o, tm_error *err);
// Runs code (like a notebook cell: a final expression's repr is printed). Returns 0 and
// fills *res (whatever the code did), or -1 if the sandbox itself could not run.
// Code over max_code_bytes is not run: status PYSB_ERROR, a ValueError line.
int pysb_run(pysb *sb, const char *code, pysb_result *res, tm_error *err);
// The same for n bytes of code (NUL bytes included: Python then reports a ValueError).
int pysb_run_n(pysb *sb, const char *code, size_t n, pysb_result *res, tm_error *err);
// Forgets all state (restarts the kernel; its /tmp goes with it).
int pysb_reset(pysb *sb, tm_error *err);
// Kills the kernel (and every process it started).
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
