// tools/python: the sandboxed python3 kernel (see python.h for the design).
#include "tools/python.h"
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOBODY 65534

// The REPL driver. Reads [u32 len][code] from fd 0, runs it in one persistent globals
// dict, and answers [status 'O'/'E'/'R'][u32 out_len][u32 err_len][u32 total][out][err]
// on fd 1. User code cannot reach the protocol fds by accident: fds 0-2 are redirected
// (stdin to /dev/null; fd-level stdout/stderr to a capture file) and the protocol
// uses private duplicates.
static const char DRIVER[] =
    "import os, sys, ast, struct, traceback\n"
    "RFD = os.dup(0); WFD = os.dup(1)\n"
    "LIMIT = int(sys.argv[1])\n"
    "n0 = os.open('/dev/null', os.O_RDONLY); os.dup2(n0, 0); os.close(n0)\n"
    "CAP = os.open('.temper_fdout', os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)\n"
    "os.dup2(CAP, 1); os.dup2(CAP, 2)\n"
    "sys.stdin = open(os.devnull)\n"
    "def readn(n):\n"
    "    b = b''\n"
    "    while len(b) < n:\n"
    "        c = os.read(RFD, n - len(b))\n"
    "        if not c: os._exit(0)\n"
    "        b += c\n"
    "    return b\n"
    "def send(st, out, err, total):\n"
    "    m = struct.pack('>cIII', st, len(out), len(err), total) + out + err\n"
    "    while m:\n"
    "        k = os.write(WFD, m); m = m[k:]\n"
    "class Cap:\n"
    "    encoding = 'utf-8'; errors = 'replace'\n"
    "    def __init__(s): s.parts = []; s.n = 0; s.total = 0\n"
    "    def write(s, t):\n"
    "        if not isinstance(t, str): raise TypeError('write() argument must be str, not ' + type(t).__name__)\n"
    "        s.total += len(t)\n"
    "        if s.n <= LIMIT:\n"
    "            t2 = t[:LIMIT + 1 - s.n]; s.parts.append(t2); s.n += len(t2)\n"
    "        return len(t)\n"
    "    def flush(s): pass\n"
    "    def isatty(s): return False\n"
    "    def writable(s): return True\n"
    "    def fileno(s): return 1\n"
    "MAIN = os.getpid()\n"
    // Kills what the call left running (a fork bomb keeps itself alive at the process
    // limit). kill(-1) reaches only this pid namespace and never its init; repeat until
    // nothing is left, reaping zombies (in the unshare fallback this process is init).
    "def sweep():\n"
    "    for i in range(200):\n"
    "        try: os.kill(-1, 9)\n"
    "        except OSError: break\n"
    "        try:\n"
    "            while os.waitpid(-1, os.WNOHANG)[0] > 0: pass\n"
    "        except ChildProcessError: pass\n"
    "        if i: __import__('time').sleep(0.002)\n"
    "    try:\n"
    "        while os.waitpid(-1, os.WNOHANG)[0] > 0: pass\n"
    "    except ChildProcessError: pass\n"
    "def _in_child():\n"
    "    try: os.close(RFD); os.close(WFD)\n"
    "    except OSError: pass\n"
    "os.register_at_fork(after_in_child=_in_child)\n"
    "G = {'__name__': '__main__', '__builtins__': __builtins__}\n"
    "send(b'R', b'', b'', 0)\n"
    "while True:\n"
    "    n = struct.unpack('>I', readn(4))[0]\n"
    "    code = readn(n).decode('utf-8', 'replace')\n"
    "    cap = Cap(); sys.stdout = cap; sys.stderr = cap\n"
    "    st = b'O'; err = ''\n"
    "    try:\n"
    "        tree = ast.parse(code, '<cell>', 'exec')\n"
    "        last = None\n"
    "        if tree.body and isinstance(tree.body[-1], ast.Expr):\n"
    "            last = ast.Expression(tree.body.pop().value)\n"
    "        exec(compile(tree, '<cell>', 'exec'), G)\n"
    "        if last is not None:\n"
    "            v = eval(compile(last, '<cell>', 'eval'), G)\n"
    "            if v is not None: print(repr(v))\n"
    "    except BaseException as e:\n"
    "        st = b'E'\n"
    "        try: err = traceback.format_exception_only(type(e), e)[-1].strip()\n"
    "        except BaseException: err = type(e).__name__\n"
    "    finally:\n"
    "        sys.stdout = sys.__stdout__; sys.stderr = sys.__stderr__\n"
    "    if os.getpid() != MAIN: os._exit(0)\n"
    "    sweep()\n"
    "    out = ''.join(cap.parts).encode('utf-8', 'replace')\n"
    "    total = cap.total\n"
    "    try:\n"
    "        size = os.fstat(CAP).st_size\n"
    "        if size:\n"
    "            if len(out) <= LIMIT: out += os.pread(CAP, LIMIT + 1 - len(out), 0)\n"
    "            total += size\n"
    "            os.ftruncate(CAP, 0)\n"
    "    except OSError: pass\n"
    "    send(st, out[:LIMIT + 1], err.encode('utf-8', 'replace')[:2000], min(total, 0xffffffff))\n";

struct pysb {
    pysb_opts o;
    pid_t pid;
    int fd;             // our end of the socketpair
    char dir[64];
    int use_bwrap;
    char *bpf;          // exported seccomp program for bwrap (memfd contents)
};

void pysb_opts_default(pysb_opts *o) {
    memset(o, 0, sizeof *o);
    o->timeout_s = 10;
    o->mem_bytes = (size_t)2 << 30;
    o->fsize_bytes = (size_t)64 << 20;
    o->nproc = 64;
    o->output_limit = 16 << 10;
    o->python = "/usr/bin/python3";
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

// ---------------------------------------------------------------- seccomp
static scmp_filter_ctx make_filter(void) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) return NULL;
    int deny[] = {SCMP_SYS(ptrace), SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(pivot_root), SCMP_SYS(chroot),
                  SCMP_SYS(unshare), SCMP_SYS(setns), SCMP_SYS(reboot), SCMP_SYS(kexec_load),
                  SCMP_SYS(kexec_file_load), SCMP_SYS(init_module), SCMP_SYS(finit_module),
                  SCMP_SYS(delete_module), SCMP_SYS(bpf), SCMP_SYS(perf_event_open), SCMP_SYS(keyctl),
                  SCMP_SYS(add_key), SCMP_SYS(request_key), SCMP_SYS(swapon), SCMP_SYS(swapoff), SCMP_SYS(acct),
                  SCMP_SYS(settimeofday), SCMP_SYS(clock_settime), SCMP_SYS(userfaultfd),
                  SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev), SCMP_SYS(open_by_handle_at),
                  SCMP_SYS(name_to_handle_at), SCMP_SYS(syslog)};
    int rc = 0;
    for (size_t k = 0; k < sizeof deny / sizeof deny[0]; k++) rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), deny[k], 0);
    // no network: sockets only of the local kind
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                           SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
    if (rc) { seccomp_release(ctx); return NULL; }
    return ctx;
}

// ---------------------------------------------------------------- child setup
static void set_limits(const pysb_opts *o) {
    struct rlimit r;
    r.rlim_cur = r.rlim_max = o->mem_bytes;
    setrlimit(RLIMIT_AS, &r);
    r.rlim_cur = r.rlim_max = o->fsize_bytes;
    setrlimit(RLIMIT_FSIZE, &r);
    r.rlim_cur = r.rlim_max = (rlim_t)(o->timeout_s * 4 + 60);  // CPU over the kernel's life
    setrlimit(RLIMIT_CPU, &r);
    r.rlim_cur = r.rlim_max = 256;
    setrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = r.rlim_max = 0;
    setrlimit(RLIMIT_CORE, &r);
    r.rlim_cur = r.rlim_max = (rlim_t)o->nproc;
    setrlimit(RLIMIT_NPROC, &r);
}

static void drop_to_nobody(void) {
    if (geteuid() != 0) return;
    setgroups(0, NULL);
    if (setresgid(NOBODY, NOBODY, NOBODY) || setresuid(NOBODY, NOBODY, NOBODY)) _exit(121);
}

static char *const CLEAN_ENV[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8",
                                  "PYTHONDONTWRITEBYTECODE=1", "PYTHONIOENCODING=utf-8", "OPENBLAS_NUM_THREADS=1",
                                  "OMP_NUM_THREADS=1", "MPLBACKEND=Agg", NULL};

// fds 0/1 = the protocol socket, 2 = /dev/null, 3 = keep (if >= 0), nothing else.
static void child_common(int fd, int keep) {
    setsid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (keep >= 0) { keep = dup2(keep, 1000) < 0 ? -1 : 1000; }
    dup2(fd, 0);
    dup2(fd, 1);
    int nul = open("/dev/null", O_WRONLY);
    if (nul >= 0) dup2(nul, 2);
    for (int k = 3; k < 1024; k++)
        if (k != keep) close(k);
    if (keep >= 0) { dup2(keep, 3); close(keep); }
}

static void run_bwrap(pysb *sb, int fd, int bpf_fd) {
    char limit[32], sfd[16];
    snprintf(limit, sizeof limit, "%zu", sb->o.output_limit);
    int keep = bpf_fd;  // the seccomp program ends up on fd 3
    child_common(fd, bpf_fd);
    snprintf(sfd, sizeof sfd, "%d", 3);
    set_limits(&sb->o);
    drop_to_nobody();
    const char *argv[64];
    int a = 0;
    const char *base[] = {"bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                          "--ro-bind", "/usr", "/usr", "--ro-bind-try", "/lib", "/lib", "--ro-bind-try", "/lib64",
                          "/lib64", "--ro-bind-try", "/bin", "/bin", "--ro-bind-try", "/sbin", "/sbin",
                          "--ro-bind-try", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/run",
                          "--bind", sb->dir, "/tmp", "--chdir", "/tmp"};
    for (size_t k = 0; k < sizeof base / sizeof base[0]; k++) argv[a++] = base[k];
    if (keep >= 0) { argv[a++] = "--seccomp"; argv[a++] = sfd; }
    argv[a++] = sb->o.python;
    argv[a++] = "-I";
    argv[a++] = "-c";
    argv[a++] = DRIVER;
    argv[a++] = limit;
    argv[a] = NULL;
    execve("/usr/bin/bwrap", (char *const *)argv, CLEAN_ENV);
    _exit(127);
}

// The top-level directory holding path (e.g. "/work" for /work/wt/x), if it is not a system one.
static void user_top(const char *path, char *out, size_t cap) {
    out[0] = 0;
    if (!path || path[0] != '/') return;
    const char *e = strchr(path + 1, '/');
    size_t n = e ? (size_t)(e - path) : strlen(path);
    if (n < 2 || n >= cap) return;
    static const char *sys_dirs[] = {"/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/dev", "/sys",
                                     "/tmp", "/run", "/var", "/boot", NULL};
    for (int k = 0; sys_dirs[k]; k++)
        if (strlen(sys_dirs[k]) == n && !strncmp(path, sys_dirs[k], n)) return;
    memcpy(out, path, n);
    out[n] = 0;
}

static void run_unshare(pysb *sb, int fd) {
    char cwd[4096], top[256];
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    user_top(cwd, top, sizeof top);
    child_common(fd, -1);
    if (unshare(CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS)) _exit(122);
    pid_t inner = fork();
    if (inner < 0) _exit(123);
    if (inner > 0) {  // the reaper: lives as long as the kernel
        int st;
        while (waitpid(inner, &st, 0) < 0 && errno == EINTR) {}
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
    // pid 1 of the new namespace: when it dies every process in it dies
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int dfd = open(sb->dir, O_RDONLY | O_DIRECTORY);
    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    const char *hide[] = {"/tmp", "/var/tmp", "/dev/shm", "/home", "/root", "/mnt", "/media", "/srv", "/run", top};
    for (size_t k = 0; k < sizeof hide / sizeof hide[0]; k++)
        if (hide[k][0]) mount("tmpfs", hide[k], "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0755");
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    if (dfd < 0 || fchdir(dfd)) _exit(124);
    close(dfd);
    set_limits(&sb->o);
    drop_to_nobody();
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    scmp_filter_ctx ctx = make_filter();
    if (!ctx || seccomp_load(ctx)) _exit(125);
    char limit[32];
    snprintf(limit, sizeof limit, "%zu", sb->o.output_limit);
    char *argv[] = {(char *)sb->o.python, "-I", "-c", (char *)DRIVER, limit, NULL};
    execve(sb->o.python, argv, CLEAN_ENV);
    _exit(127);
}

// ---------------------------------------------------------------- protocol
static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0) { if (errno == EINTR) continue; return -1; }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

// 0 ok, -1 EOF/error, -2 timeout
static int read_all(int fd, void *p, size_t n, double deadline) {
    char *c = p;
    while (n) {
        double left = deadline - now_s();
        if (left <= 0) return -2;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int r = poll(&pf, 1, (int)(left * 1000) + 1);
        if (r < 0) { if (errno == EINTR) continue; return -1; }
        if (r == 0) continue;
        ssize_t k = read(fd, c, n);
        if (k < 0) { if (errno == EINTR || errno == EAGAIN) continue; return -1; }
        if (k == 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static uint32_t be32(const unsigned char *b) { return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]; }

static void kill_kernel(pysb *sb, int *status) {
    if (sb->pid > 0) {
        kill(sb->pid, SIGTERM);  // the supervisor kills the sandbox and reaps it all
        int st = 0;
        while (waitpid(sb->pid, &st, 0) < 0 && errno == EINTR) {}
        if (status) *status = st;
    }
    sb->pid = 0;
    if (sb->fd >= 0) close(sb->fd);
    sb->fd = -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f) {
    (void)st; (void)flag; (void)f;
    remove(path);
    return 0;
}

static int empty_dir(const char *dir) {
    // delete the contents, keep the directory
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (mkdir(dir, 0700) && errno != EEXIST) return -1;
    if (geteuid() == 0 && chown(dir, NOBODY, NOBODY)) return -1;
    return 0;
}

// Our direct child: a subreaper between us and the sandbox, so that every process of
// the sandbox (namespace inits orphaned by a kill included) is reaped here and the
// machine is left as it was. SIGTERM from us = kill the sandbox's process group; it
// exits once it has no children left.
static void supervise(pysb *sb, int fd, int bpf_fd) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pid_t w = fork();
    if (w < 0) _exit(126);
    if (w == 0) {
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        if (sb->use_bwrap) run_bwrap(sb, fd, bpf_fd);
        else run_unshare(sb, fd);
        _exit(127);
    }
    for (int k = 3; k < 1024; k++) close(k);  // our socket end too: EOF must reach the parent
    int code = 0;
    for (;;) {
        int sig;
        if (sigwait(&set, &sig)) continue;
        if (sig == SIGTERM) { kill(-w, SIGKILL); kill(w, SIGKILL); }
        for (;;) {
            int st;
            pid_t r = waitpid(-1, &st, WNOHANG);
            if (r == w) code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            if (r > 0) continue;
            if (r < 0 && errno == ECHILD) _exit(code);
            break;
        }
    }
}

static int spawn(pysb *sb, tm_error *err) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) return tm_fail(err, "python sandbox: socketpair: %s", strerror(errno));
    int bpf_fd = -1;
    if (sb->use_bwrap) {
        scmp_filter_ctx ctx = make_filter();
        bpf_fd = memfd_create("temper-seccomp", 0);
        if (ctx && bpf_fd >= 0 && seccomp_export_bpf(ctx, bpf_fd) == 0) lseek(bpf_fd, 0, SEEK_SET);
        else if (bpf_fd >= 0) { close(bpf_fd); bpf_fd = -1; }
        if (ctx) seccomp_release(ctx);
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]); close(sv[1]);
        if (bpf_fd >= 0) close(bpf_fd);
        return tm_fail(err, "python sandbox: fork: %s", strerror(errno));
    }
    if (pid == 0) supervise(sb, sv[1], bpf_fd);
    close(sv[1]);
    if (bpf_fd >= 0) close(bpf_fd);
    sb->pid = pid;
    sb->fd = sv[0];
    unsigned char h[13];
    if (read_all(sb->fd, h, 13, now_s() + 30) || h[0] != 'R') {
        int st = 0;
        kill_kernel(sb, &st);
        return tm_fail(err, "python sandbox (%s): the interpreter did not start (%s %d)", pysb_mode(sb),
                       WIFEXITED(st) ? "exit status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
    return 0;
}

// ---------------------------------------------------------------- mode probe
static atomic_int g_mode = 0;  // 0 unknown, 1 bwrap, 2 unshare
static atomic_flag g_warned = ATOMIC_FLAG_INIT;

static int bwrap_works(void) {
    if (access("/usr/bin/bwrap", X_OK)) return 0;
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 0); dup2(nul, 1); dup2(nul, 2);
        drop_to_nobody();
        char *argv[] = {"bwrap", "--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "/bin/true", NULL};
        execve("/usr/bin/bwrap", argv, CLEAN_ENV);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

pysb *pysb_open(const pysb_opts *o, tm_error *err) {
    pysb *sb = calloc(1, sizeof *sb);
    if (!sb) { tm_fail(err, "python sandbox: out of memory"); return NULL; }
    if (o) sb->o = *o; else pysb_opts_default(&sb->o);
    if (!sb->o.python) sb->o.python = "/usr/bin/python3";
    if (!sb->o.output_limit) sb->o.output_limit = 16 << 10;
    sb->fd = -1;
    const char *mode = sb->o.mode ? sb->o.mode : getenv("TEMPER_SANDBOX");
    if (mode && !strcmp(mode, "bwrap")) sb->use_bwrap = 1;
    else if (mode && !strcmp(mode, "unshare")) sb->use_bwrap = 0;
    else {
        if (!atomic_load(&g_mode)) atomic_store(&g_mode, bwrap_works() ? 1 : 2);
        sb->use_bwrap = atomic_load(&g_mode) == 1;
        if (!sb->use_bwrap && !atomic_flag_test_and_set(&g_warned))
            fprintf(stderr, "temper: warning: bubblewrap is not usable here; the python sandbox falls back to "
                            "unshare(2) namespaces + seccomp\n");
    }
    strcpy(sb->dir, "/tmp/temper-py-XXXXXX");
    if (!mkdtemp(sb->dir)) {
        tm_fail(err, "python sandbox: mkdtemp: %s", strerror(errno));
        free(sb);
        return NULL;
    }
    if (geteuid() == 0 && chown(sb->dir, NOBODY, NOBODY)) {
        tm_fail(err, "python sandbox: chown %s: %s", sb->dir, strerror(errno));
        rmdir(sb->dir);
        free(sb);
        return NULL;
    }
    if (spawn(sb, err)) {
        nftw(sb->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(sb);
        return NULL;
    }
    return sb;
}

const char *pysb_mode(const pysb *sb) { return sb->use_bwrap ? "bwrap" : "unshare"; }

void pysb_close(pysb *sb) {
    if (!sb) return;
    kill_kernel(sb, NULL);
    nftw(sb->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(sb->bpf);
    free(sb);
}

int pysb_reset(pysb *sb, tm_error *err) {
    kill_kernel(sb, NULL);
    if (empty_dir(sb->dir)) return tm_fail(err, "python sandbox: cannot empty %s", sb->dir);
    return spawn(sb, err);
}

void pysb_result_free(pysb_result *r) {
    free(r->output);
    free(r->error);
    r->output = r->error = NULL;
}

char *pysb_result_text(const pysb_result *r) {
    size_t n = (r->output ? strlen(r->output) : 0) + (r->error ? strlen(r->error) : 0) + 2;
    char *s = malloc(n);
    if (!s) return NULL;
    snprintf(s, n, "%s%s%s", r->output ? r->output : "",
             r->error && *r->error && r->output && *r->output && r->output[strlen(r->output) - 1] != '\n' ? "\n" : "",
             r->error ? r->error : "");
    return s;
}

static int send_code(pysb *sb, const char *code, tm_error *err) {
    if (sb->fd < 0 && spawn(sb, err)) return -1;
    size_t n = strlen(code);
    if (n > 0x7fffffff) return tm_fail(err, "python sandbox: code too long");
    unsigned char h[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
    if (write_all(sb->fd, h, 4) || write_all(sb->fd, code, n)) {
        // the kernel died between calls: restart once
        kill_kernel(sb, NULL);
        if (spawn(sb, err)) return -1;
        if (write_all(sb->fd, h, 4) || write_all(sb->fd, code, n)) return tm_fail(err, "python sandbox: cannot send code");
    }
    return 0;
}

static int recv_result(pysb *sb, double t0, pysb_result *res, tm_error *err) {
    memset(res, 0, sizeof *res);
    double deadline = t0 + sb->o.timeout_s;
    unsigned char h[13];
    int r = read_all(sb->fd, h, 13, deadline);
    uint32_t no = 0, ne = 0, total = 0;
    char *out = NULL, *er = NULL;
    if (r == 0) {
        no = be32(h + 1); ne = be32(h + 5); total = be32(h + 9);
        if (no > sb->o.output_limit + 1 || ne > 2000) r = -1;
        else {
            out = malloc(no + 1);
            er = malloc(ne + 1);
            if (!out || !er) r = -1;
            else r = read_all(sb->fd, out, no, deadline + 5);
            if (!r) r = read_all(sb->fd, er, ne, deadline + 5);
        }
    }
    res->seconds = now_s() - t0;
    if (r) {
        free(out);
        free(er);
        int st = 0;
        kill_kernel(sb, &st);
        char msg[160];
        if (r == -2) {
            res->status = PYSB_TIMEOUT;
            snprintf(msg, sizeof msg, "TimeoutError: execution timed out after %g s (the interpreter was restarted)", sb->o.timeout_s);
        } else {
            res->status = PYSB_CRASH;
            if (WIFEXITED(st) && WEXITSTATUS(st) > 128) snprintf(msg, sizeof msg, "RuntimeError: the interpreter died (signal %d); it was restarted", WEXITSTATUS(st) - 128);
        else if (WIFSIGNALED(st)) snprintf(msg, sizeof msg, "RuntimeError: the interpreter died (signal %d); it was restarted", WTERMSIG(st));
            else snprintf(msg, sizeof msg, "RuntimeError: the interpreter exited (status %d); it was restarted", WEXITSTATUS(st));
        }
        res->output = strdup("");
        res->error = strdup(msg);
        if (empty_dir(sb->dir) || spawn(sb, err)) return -1;
        return 0;
    }
    out[no] = 0;
    er[ne] = 0;
    res->status = h[0] == 'E' ? PYSB_ERROR : PYSB_OK;
    size_t lim = sb->o.output_limit;
    if (no > lim || total > lim) {
        size_t keep = no > lim ? lim : no;
        while (keep > 0 && ((unsigned char)out[keep] & 0xC0) == 0x80) keep--;  // UTF-8 boundary
        char marker[128];
        snprintf(marker, sizeof marker, "\n... [output truncated: %zu bytes kept of about %lu]\n", keep,
                 (unsigned long)(total > no ? total : no));
        char *t = malloc(keep + strlen(marker) + 1);
        if (t) {
            memcpy(t, out, keep);
            strcpy(t + keep, marker);
            free(out);
            out = t;
        }
        res->truncated = 1;
    }
    res->output = out;
    res->output_len = strlen(out);
    res->error = er;
    return 0;
}

int pysb_run(pysb *sb, const char *code, pysb_result *res, tm_error *err) {
    double t0 = now_s();
    if (send_code(sb, code, err)) { memset(res, 0, sizeof *res); return -1; }
    return recv_result(sb, t0, res, err);
}

int pysb_run_many(pysb **sbs, const char **codes, pysb_result *res, int n, tm_error *err) {
    double t0 = now_s();
    int rc = 0;
    int *sent = calloc((size_t)n, sizeof *sent);
    if (!sent) return tm_fail(err, "python sandbox: out of memory");
    for (int k = 0; k < n; k++) sent[k] = send_code(sbs[k], codes[k], err) == 0;
    for (int k = 0; k < n; k++) {
        if (!sent[k]) { memset(&res[k], 0, sizeof res[k]); rc = -1; continue; }
        if (recv_result(sbs[k], t0, &res[k], err)) rc = -1;
    }
    free(sent);
    return rc;
}

int pysb_pool_open(pysb_pool *p, int n, const pysb_opts *o, tm_error *err) {
    memset(p, 0, sizeof *p);
    p->sb = calloc((size_t)n, sizeof *p->sb);
    p->busy = calloc((size_t)n, sizeof *p->busy);
    if (!p->sb || !p->busy) { free(p->sb); free(p->busy); return tm_fail(err, "python pool: out of memory"); }
    for (int k = 0; k < n; k++) {
        p->sb[k] = pysb_open(o, err);
        if (!p->sb[k]) { p->n = k; pysb_pool_close(p); return -1; }
    }
    p->n = n;
    return 0;
}

pysb *pysb_pool_acquire(pysb_pool *p) {
    for (int k = 0; k < p->n; k++)
        if (!p->busy[k]) { p->busy[k] = 1; return p->sb[k]; }
    return NULL;
}

int pysb_pool_release(pysb_pool *p, pysb *sb, tm_error *err) {
    for (int k = 0; k < p->n; k++)
        if (p->sb[k] == sb) { p->busy[k] = 0; return pysb_reset(sb, err); }
    return tm_fail(err, "python pool: sandbox not from this pool");
}

void pysb_pool_close(pysb_pool *p) {
    for (int k = 0; k < p->n; k++) pysb_close(p->sb[k]);
    free(p->sb);
    free(p->busy);
    memset(p, 0, sizeof *p);
}
