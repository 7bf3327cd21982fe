// tools/python: the sandboxed python3 kernel (see python.h for the design).
#include "tools/python.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <math.h>
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
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// Each sandbox gets a uid of its own from this range (when we are root), so that
// RLIMIT_NPROC, which counts the processes of a uid, is a per-sandbox limit: a fork
// bomb in one sandbox cannot stop another from starting. The range lies between
// systemd's container range and its "foreign" range (docs/UIDS-GIDS.md upstream).
#define UID_BASE 0x70000000u
#define UID_RANGE (1u << 24)

#define TOKEN_LEN 16
#define REPLY_HEAD (TOKEN_LEN + 13)  // token, status, out_len, err_len, total

// The REPL driver. Reads [u32 len][16-byte token][code] from fd 0, runs the code in one
// persistent globals dict, and answers [token][status 'O'/'E'/'R'][u32 out_len]
// [u32 err_len][u32 total][out][err] on fd 1. fds 0-2 are redirected (stdin to
// /dev/null; fd-level stdout/stderr to a capture file) and the protocol uses private
// duplicates, so user code does not reach them by accident. It can on purpose (it
// runs in this process): the supervisor therefore checks each reply's token against
// the one it sent for this call and treats bytes between calls as a forgery.
static const char DRIVER[] =
    "import os, sys, ast, struct, traceback\n"
    "RFD = os.dup(0); WFD = os.dup(1)\n"
    "LIMIT = int(sys.argv[1])\n"
    "n0 = os.open('/dev/null', os.O_RDONLY); os.dup2(n0, 0); os.close(n0)\n"
    "CAP = os.open('/tmp/.temper_fdout', os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)\n"
    "os.dup2(CAP, 1); os.dup2(CAP, 2)\n"
    "sys.stdin = open(os.devnull)\n"
    "def readn(n):\n"
    "    b = bytearray()\n"
    "    while len(b) < n:\n"
    "        c = os.read(RFD, min(n - len(b), 1 << 20))\n"
    "        if not c: os._exit(0)\n"
    "        b += c\n"
    "    return bytes(b)\n"
    "def send(tok, st, out, err, total):\n"
    "    m = struct.pack('>16scIII', tok, st, len(out), len(err), total) + out + err\n"
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
    "send(bytes(16), b'R', b'', b'', 0)\n"
    "while True:\n"
    "    n = struct.unpack('>I', readn(4))[0]\n"
    "    tok = readn(16)\n"
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
    "    send(tok, st, out[:LIMIT + 1], err.encode('utf-8', 'replace')[:2000], min(total, 0xffffffff))\n";

struct pysb {
    pysb_opts o;
    pid_t pid;          // the supervisor (our direct child); 0 when no kernel runs
    int fd;             // our end of the socketpair; -1 when no kernel runs
    int use_bwrap;
    unsigned uid;       // the sandbox's own uid (root only; else ours)
    unsigned char token[TOKEN_LEN];  // the call in flight's token
    double t0, deadline;             // the call in flight's start and end
};

void pysb_opts_default(pysb_opts *o) {
    memset(o, 0, sizeof *o);
    o->timeout_s = 10;
    o->mem_bytes = (size_t)2 << 30;
    o->fsize_bytes = (size_t)64 << 20;
    o->nproc = 64;
    o->output_limit = 16 << 10;
    o->max_code_bytes = 1 << 20;
    o->python = "/usr/bin/python3";
}

int pysb_opts_check(const pysb_opts *o, tm_error *err) {
    if (!(o->timeout_s > 0 && o->timeout_s <= PYSB_MAX_TIMEOUT))  // also refuses nan
        return tm_fail(err, "python sandbox: --timeout must be in (0, %d] seconds, got %g", PYSB_MAX_TIMEOUT, o->timeout_s);
    if (o->mem_bytes < PYSB_MIN_MEM_MB << 20 || o->mem_bytes > (size_t)PYSB_MAX_MEM_MB << 20)
        return tm_fail(err, "python sandbox: --memory-mb must be in [%d, %d], got %zu", PYSB_MIN_MEM_MB, PYSB_MAX_MEM_MB,
                       o->mem_bytes >> 20);
    if (o->output_limit < 1 || o->output_limit > PYSB_MAX_OUTPUT)
        return tm_fail(err, "python sandbox: --output-limit must be in [1, %d] bytes, got %zu", PYSB_MAX_OUTPUT, o->output_limit);
    if (o->max_code_bytes < 1 || o->max_code_bytes > PYSB_MAX_CODE)
        return tm_fail(err, "python sandbox: --max-code-bytes must be in [1, %d], got %zu", PYSB_MAX_CODE, o->max_code_bytes);
    if (o->nproc < 4 || o->nproc > 65536) return tm_fail(err, "python sandbox: nproc must be in [4, 65536], got %d", o->nproc);
    if (o->mode && strcmp(o->mode, "auto") && strcmp(o->mode, "bwrap") && strcmp(o->mode, "unshare"))
        return tm_fail(err, "python sandbox: --sandbox must be auto, bwrap or unshare, got '%s'", o->mode);
    return 0;
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
    // Calls that fail as if this kernel did not have them: clone3 passes its flags in
    // memory, where seccomp cannot look, so it must go (glibc then falls back to clone,
    // whose flags are checked below); io_uring does syscalls' work outside seccomp's
    // view; the new mount API and pidfd_getfd reach around the checks on mount and ptrace.
    int absent[] = {SCMP_SYS(clone3), SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter),
                    SCMP_SYS(io_uring_register), SCMP_SYS(fsopen), SCMP_SYS(fsconfig), SCMP_SYS(fsmount),
                    SCMP_SYS(fspick), SCMP_SYS(move_mount), SCMP_SYS(open_tree), SCMP_SYS(mount_setattr),
                    SCMP_SYS(pidfd_getfd)};
    int rc = 0;
    for (size_t k = 0; k < sizeof deny / sizeof deny[0]; k++) rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), deny[k], 0);
    for (size_t k = 0; k < sizeof absent / sizeof absent[0]; k++)
        rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), absent[k], 0);
    // no network: sockets only of the local kind
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX));
    // no new namespaces through clone (fork and threads pass none of these flags)
    const long ns_flags[] = {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS,
                             CLONE_NEWCGROUP};
    for (size_t k = 0; k < sizeof ns_flags / sizeof ns_flags[0]; k++)
        rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                               SCMP_A0(SCMP_CMP_MASKED_EQ, (scmp_datum_t)ns_flags[k], (scmp_datum_t)ns_flags[k]));
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

static void drop_to(unsigned uid) {
    if (geteuid() != 0) return;
    setgroups(0, NULL);
    if (setresgid(uid, uid, uid) || setresuid(uid, uid, uid)) _exit(121);
}

// A uid no other sandbox of this machine is likely to hold: a random start per process,
// then consecutive. Without root every sandbox keeps ours (see python.h).
static unsigned pick_uid(void) {
    static atomic_uint next;
    static atomic_int seeded;
    if (geteuid() != 0) return (unsigned)getuid();
    if (!atomic_exchange(&seeded, 1)) {
        unsigned s = 0;
        if (getrandom(&s, sizeof s, 0) != sizeof s) s = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
        atomic_fetch_add(&next, s);
    }
    return UID_BASE + atomic_fetch_add(&next, 1) % UID_RANGE;
}

static char *const CLEAN_ENV[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8",
                                  "PYTHONDONTWRITEBYTECODE=1", "PYTHONIOENCODING=utf-8", "OPENBLAS_NUM_THREADS=1",
                                  "OMP_NUM_THREADS=1", "MPLBACKEND=Agg", NULL};

// What the sandbox sees of /etc (both modes): what the loader, python, numpy's BLAS
// (through /etc/alternatives) and the C library's lookups read. Not /etc as a whole:
// no shadow files, ssh keys, or the host's configuration.
static const char *ETC_PIECES[] = {"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime",
                                   "timezone", "passwd", "group", "nsswitch.conf", "hosts", "host.conf",
                                   "gai.conf", "protocols", "services", "mime.types", "os-release",
                                   "debian_version", "fonts", "ssl", "matplotlibrc", "python3", NULL};
// plus every /etc/python3.* (Debian's sitecustomize), found at spawn time
static int etc_python_dirs(char names[][32], int cap) {
    DIR *d = opendir("/etc");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < cap)
        if (!strncmp(e->d_name, "python3.", 8) && strlen(e->d_name) < 32) strcpy(names[n++], e->d_name);
    if (d) closedir(d);
    return n;
}

// tmpfs sizes: /tmp and /dev/shm each hold at most half the memory limit, so a call
// keeps at most --memory-mb in files plus --memory-mb of address space.
static size_t tmpfs_bytes(const pysb_opts *o) { return o->mem_bytes / 2; }

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
    char limit[32], size[32], etc[40][48], pydirs[8][32];
    snprintf(limit, sizeof limit, "%zu", sb->o.output_limit);
    snprintf(size, sizeof size, "%zu", tmpfs_bytes(&sb->o));
    int keep = bpf_fd;  // the seccomp program ends up on fd 3
    int npy = etc_python_dirs(pydirs, 8);
    child_common(fd, bpf_fd);
    set_limits(&sb->o);
    drop_to(sb->uid);
    const char *argv[160];
    int a = 0;
    const char *base[] = {"bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                          "--ro-bind", "/usr", "/usr", "--ro-bind-try", "/lib", "/lib", "--ro-bind-try", "/lib64",
                          "/lib64", "--ro-bind-try", "/bin", "/bin", "--ro-bind-try", "/sbin", "/sbin",
                          "--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/dev/shm",
                          "--size", size, "--tmpfs", "/tmp", "--chdir", "/tmp"};
    for (size_t k = 0; k < sizeof base / sizeof base[0]; k++) argv[a++] = base[k];
    int ne = 0;
    for (int k = 0; ETC_PIECES[k]; k++) snprintf(etc[ne++], sizeof etc[0], "/etc/%s", ETC_PIECES[k]);
    for (int k = 0; k < npy; k++) snprintf(etc[ne++], sizeof etc[0], "/etc/%.31s", pydirs[k]);
    for (int k = 0; k < ne; k++) { argv[a++] = "--ro-bind-try"; argv[a++] = etc[k]; argv[a++] = etc[k]; }
    // last, once the skeleton is built: the root and bwrap's /dev are tmpfs mounts
    // without a size limit that the sandbox's uid owns, so they must not stay writable
    const char *ro[] = {"--remount-ro", "/dev", "--remount-ro", "/"};
    for (size_t k = 0; k < 4; k++) argv[a++] = ro[k];
    if (keep >= 0) { argv[a++] = "--seccomp"; argv[a++] = "3"; }
    argv[a++] = sb->o.python;
    argv[a++] = "-I";
    argv[a++] = "-c";
    argv[a++] = DRIVER;
    argv[a++] = limit;
    argv[a] = NULL;
    execve("/usr/bin/bwrap", (char *const *)argv, CLEAN_ENV);
    _exit(127);
}

// ---------------------------------------------------------------- the unshare fallback's root
// The fallback builds the same view as the bwrap mode by hand: a new root (a small
// tmpfs, read-only once built) holding read-only binds of /usr, the /lib and /bin
// links, the /etc pieces and five device nodes, a fresh /proc, and size-limited
// tmpfs /tmp and /dev/shm. The host's root is then detached: nothing else is reachable.
#define NEWROOT "/tmp"  // mounted over in our private mount namespace only

static int bind_ro(const char *src, const char *dst) {
    struct stat st;
    if (stat(src, &st)) return 0;  // absent on this host: skip, like --ro-bind-try
    if (S_ISDIR(st.st_mode)) { if (mkdir(dst, 0755) && errno != EEXIST) return -1; }
    else {
        int f = open(dst, O_WRONLY | O_CREAT, 0644);
        if (f < 0) return -1;
        close(f);
    }
    if (mount(src, dst, NULL, MS_BIND, NULL)) return -1;
    return mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, NULL);
}

// /bin, /lib... are links into /usr on merged-/usr systems: copy the link, else bind.
static int link_or_bind(const char *path) {
    char dst[256], target[256];
    struct stat st;
    if (lstat(path, &st)) return 0;
    snprintf(dst, sizeof dst, NEWROOT "%.200s", path);
    if (S_ISLNK(st.st_mode)) {
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n < 0) return -1;
        target[n] = 0;
        return symlink(target, dst);
    }
    return bind_ro(path, dst);
}

static int build_root(const pysb_opts *o) {
    char opt[64], dst[256], pydirs[8][32];
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) return -1;
    if (mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID, "size=1m,mode=0755")) return -1;
    if (bind_ro("/usr", NEWROOT "/usr")) return -1;
    const char *links[] = {"/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"};
    for (size_t k = 0; k < sizeof links / sizeof links[0]; k++)
        if (link_or_bind(links[k])) return -1;
    if (mkdir(NEWROOT "/etc", 0755)) return -1;
    for (int k = 0; ETC_PIECES[k]; k++) {
        char src[128];
        snprintf(src, sizeof src, "/etc/%s", ETC_PIECES[k]);
        snprintf(dst, sizeof dst, NEWROOT "/etc/%s", ETC_PIECES[k]);
        if (bind_ro(src, dst)) return -1;
    }
    int npy = etc_python_dirs(pydirs, 8);
    for (int k = 0; k < npy; k++) {
        char src[128];
        snprintf(src, sizeof src, "/etc/%.31s", pydirs[k]);
        snprintf(dst, sizeof dst, NEWROOT "/etc/%.31s", pydirs[k]);
        if (bind_ro(src, dst)) return -1;
    }
    if (mkdir(NEWROOT "/dev", 0755)) return -1;
    const char *devs[] = {"null", "zero", "full", "random", "urandom"};
    for (size_t k = 0; k < sizeof devs / sizeof devs[0]; k++) {
        char src[64];
        snprintf(src, sizeof src, "/dev/%s", devs[k]);
        snprintf(dst, sizeof dst, NEWROOT "/dev/%s", devs[k]);
        // device nodes must stay usable, so no MS_RDONLY remount (which would stop writes to /dev/null)
        int f = open(dst, O_WRONLY | O_CREAT, 0644);
        if (f < 0) return -1;
        close(f);
        if (mount(src, dst, NULL, MS_BIND, NULL)) return -1;
    }
    const char *fds[][2] = {{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
                            {"/proc/self/fd/2", "stderr"}};
    for (size_t k = 0; k < 4; k++) {
        snprintf(dst, sizeof dst, NEWROOT "/dev/%s", fds[k][1]);
        if (symlink(fds[k][0], dst)) return -1;
    }
    snprintf(opt, sizeof opt, "size=%zu,mode=1777", tmpfs_bytes(o));
    if (mkdir(NEWROOT "/dev/shm", 0755) || mount("tmpfs", NEWROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, opt)) return -1;
    if (mkdir(NEWROOT "/tmp", 0755) || mount("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opt)) return -1;
    if (mkdir(NEWROOT "/proc", 0755) ||
        mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) return -1;
    if (mount(NULL, NEWROOT, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID, NULL)) return -1;
    // pivot_root(".", "."): the old root ends up on top of the new one; detach it
    if (chdir(NEWROOT) || syscall(SYS_pivot_root, ".", ".") || umount2(".", MNT_DETACH)) return -1;
    return chdir("/tmp");
}

static void run_unshare(pysb *sb, int fd) {
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
    if (build_root(&sb->o)) _exit(124);
    set_limits(&sb->o);
    drop_to(sb->uid);
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
// 0 ok, -1 the peer is gone, -2 deadline passed. Our end of the socket never blocks
// past the deadline: a kernel that stops reading cannot hold a call longer than that.
static int write_all(int fd, const void *p, size_t n, double deadline) {
    const char *c = p;
    while (n) {
        double left = deadline - now_s();
        if (left <= 0) return -2;
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        int r = poll(&pf, 1, (int)(left * 1000) + 1);
        if (r < 0) { if (errno == EINTR) continue; return -1; }
        if (r == 0) continue;
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0) { if (errno == EINTR || errno == EAGAIN) continue; return -1; }
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

// What the exit status of a kernel that did not start means.
static const char *start_failure(int st) {
    if (!WIFEXITED(st)) return "killed";
    switch (WEXITSTATUS(st)) {
    case 121: return "cannot switch to the sandbox's uid";
    case 122: return "unshare(2) refused: the fallback needs root";
    case 124: return "cannot build the sandbox's root filesystem";
    case 125: return "cannot load the seccomp filter";
    case 127: return "cannot run bwrap or python";
    default: return "the interpreter exited";
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
        if (bpf_fd < 0) { close(sv[0]); close(sv[1]); return tm_fail(err, "python sandbox: cannot build the seccomp filter"); }
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
    unsigned char h[REPLY_HEAD];
    if (read_all(sb->fd, h, REPLY_HEAD, now_s() + 30) || h[TOKEN_LEN] != 'R') {
        int st = 0;
        kill_kernel(sb, &st);
        return tm_fail(err, "python sandbox (%s): the interpreter did not start (%s; %s %d)", pysb_mode(sb),
                       start_failure(st), WIFEXITED(st) ? "exit status" : "signal",
                       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
    return 0;
}

// ---------------------------------------------------------------- mode probe
static atomic_int g_mode = 0;  // 0 unknown, 1 bwrap, 2 unshare
static atomic_flag g_warned = ATOMIC_FLAG_INIT;

// Runs bwrap once. bwrap's own pid-1 process outlives the bwrap we wait for, so the
// probe runs under a subreaper child of ours that reaps every process it leaves
// (else one "[bwrap] <defunct>" per run stays behind, reparented to init).
static int bwrap_works(void) {
    if (access("/usr/bin/bwrap", X_OK)) return 0;
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        pid_t b = fork();
        if (b < 0) _exit(1);
        if (b == 0) {
            int nul = open("/dev/null", O_RDWR);
            dup2(nul, 0); dup2(nul, 1); dup2(nul, 2);
            drop_to(pick_uid());
            char *argv[] = {"bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc",
                            "--dev", "/dev", "/bin/true", NULL};
            execve("/usr/bin/bwrap", argv, CLEAN_ENV);
            _exit(127);
        }
        int code = 1, st;
        pid_t r;
        while ((r = wait(&st)) > 0 || errno == EINTR)
            if (r == b) code = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
        _exit(code);
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
    if (!sb->o.max_code_bytes) sb->o.max_code_bytes = 1 << 20;
    sb->fd = -1;
    const char *mode = sb->o.mode ? sb->o.mode : getenv("TEMPER_SANDBOX");
    if (mode && !strcmp(mode, "auto")) mode = NULL;
    sb->o.mode = mode;
    if (pysb_opts_check(&sb->o, err)) { free(sb); return NULL; }
    if (mode && !strcmp(mode, "bwrap")) sb->use_bwrap = 1;
    else if (mode && !strcmp(mode, "unshare")) sb->use_bwrap = 0;
    else {
        if (!atomic_load(&g_mode)) atomic_store(&g_mode, bwrap_works() ? 1 : 2);
        sb->use_bwrap = atomic_load(&g_mode) == 1;
        if (!sb->use_bwrap && !atomic_flag_test_and_set(&g_warned))
            fprintf(stderr, "temper: warning: bubblewrap is not usable here; the python sandbox falls back to "
                            "unshare(2) namespaces + seccomp\n");
    }
    sb->uid = pick_uid();
    if (spawn(sb, err)) { free(sb); return NULL; }
    return sb;
}

const char *pysb_mode(const pysb *sb) { return sb->use_bwrap ? "bwrap" : "unshare"; }

void pysb_close(pysb *sb) {
    if (!sb) return;
    kill_kernel(sb, NULL);
    free(sb);
}

int pysb_reset(pysb *sb, tm_error *err) {
    kill_kernel(sb, NULL);  // its /tmp was a tmpfs of its own: gone with it
    return spawn(sb, err);
}

void pysb_result_free(pysb_result *r) {
    free(r->output);
    free(r->error);
    r->output = r->error = NULL;
}

char *pysb_result_text_n(const pysb_result *r, size_t *len) {
    size_t no = r->output ? r->output_len : 0, ne = r->error ? r->error_len : 0;
    int nl = ne && no && r->output[no - 1] != '\n';
    char *s = malloc(no + nl + ne + 1);
    if (!s) return NULL;
    if (no) memcpy(s, r->output, no);
    if (nl) s[no] = '\n';
    if (ne) memcpy(s + no + nl, r->error, ne);
    s[no + nl + ne] = 0;
    if (len) *len = no + nl + ne;
    return s;
}

char *pysb_result_text(const pysb_result *r) { return pysb_result_text_n(r, NULL); }

// ---------------------------------------------------------------- calls
static int set_result(pysb_result *res, pysb_status status, const char *msg) {
    res->status = status;
    res->output = strdup("");
    res->error = strdup(msg);
    res->output_len = 0;
    res->error_len = res->error ? strlen(res->error) : 0;
    return res->output && res->error ? 0 : -1;
}

// The call failed on our side of the socket (r: -1 the kernel died or broke the
// protocol, -2 the deadline passed; forged: a reply that was not this call's). Kills
// the kernel; the next call starts a fresh one.
static int call_failed(pysb *sb, int r, int forged, pysb_result *res, tm_error *err) {
    int st = 0;
    kill_kernel(sb, &st);
    char msg[200];
    pysb_status status = PYSB_CRASH;
    if (r == -2) {
        status = PYSB_TIMEOUT;
        snprintf(msg, sizeof msg, "TimeoutError: execution timed out after %g s (the interpreter was restarted)", sb->o.timeout_s);
    } else if (forged)
        snprintf(msg, sizeof msg, "RuntimeError: the code wrote a forged reply on the sandbox's protocol channel; "
                                  "the interpreter was restarted");
    else if (WIFEXITED(st) && WEXITSTATUS(st) > 128)
        snprintf(msg, sizeof msg, "RuntimeError: the interpreter died (signal %d); it was restarted", WEXITSTATUS(st) - 128);
    else if (WIFSIGNALED(st))
        snprintf(msg, sizeof msg, "RuntimeError: the interpreter died (signal %d); it was restarted", WTERMSIG(st));
    else snprintf(msg, sizeof msg, "RuntimeError: the interpreter exited (status %d); it was restarted", WEXITSTATUS(st));
    res->seconds = now_s() - sb->t0;
    if (set_result(res, status, msg)) return tm_fail(err, "python sandbox: out of memory");
    return 0;
}

// Bytes waiting before a call was sent can only come from the code of an earlier call
// (a thread or process it left behind writing on the protocol channel). 1 if so; EOF
// (the kernel died between calls) restarts it quietly.
static int stray_bytes(pysb *sb, tm_error *err, int *failed) {
    *failed = 0;
    struct pollfd pf = {.fd = sb->fd, .events = POLLIN};
    if (poll(&pf, 1, 0) <= 0) return 0;
    char c;
    if (recv(sb->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1) return 1;
    kill_kernel(sb, NULL);
    if (spawn(sb, err)) *failed = 1;
    return 0;
}

// Sends one call. 0: sent, the reply is to be read; 1: finished here (res filled);
// -1: the sandbox could not run.
static int call_begin(pysb *sb, const char *code, size_t n, pysb_result *res, tm_error *err) {
    memset(res, 0, sizeof *res);
    sb->t0 = now_s();
    if (n > sb->o.max_code_bytes) {
        char msg[160];
        snprintf(msg, sizeof msg, "ValueError: the code is %zu bytes, over the sandbox's limit of %zu (--max-code-bytes)",
                 n, sb->o.max_code_bytes);
        res->status = PYSB_ERROR;
        if (set_result(res, PYSB_ERROR, msg)) return tm_fail(err, "python sandbox: out of memory");
        return 1;
    }
    if (sb->fd < 0 && spawn(sb, err)) return -1;
    int failed;
    if (stray_bytes(sb, err, &failed)) return call_failed(sb, -1, 1, res, err) ? -1 : 1;
    if (failed) return -1;
    if (getrandom(sb->token, TOKEN_LEN, 0) != TOKEN_LEN) return tm_fail(err, "python sandbox: getrandom: %s", strerror(errno));
    unsigned char h[4 + TOKEN_LEN] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
    memcpy(h + 4, sb->token, TOKEN_LEN);
    sb->deadline = now_s() + sb->o.timeout_s;  // the whole call, sending included
    int r = write_all(sb->fd, h, sizeof h, sb->deadline);
    if (!r) r = write_all(sb->fd, code, n, sb->deadline);
    if (r) return call_failed(sb, r, 0, res, err) ? -1 : 1;
    return 0;
}

static int call_end(pysb *sb, pysb_result *res, tm_error *err) {
    unsigned char h[REPLY_HEAD];
    int r = read_all(sb->fd, h, REPLY_HEAD, sb->deadline);
    if (!r && memcmp(h, sb->token, TOKEN_LEN)) return call_failed(sb, -1, 1, res, err);
    uint32_t no = 0, ne = 0, total = 0;
    char *out = NULL, *er = NULL;
    const unsigned char *st = h + TOKEN_LEN;
    if (!r) {
        no = be32(st + 1); ne = be32(st + 5); total = be32(st + 9);
        if ((st[0] != 'O' && st[0] != 'E') || no > sb->o.output_limit + 1 || ne > 2000) return call_failed(sb, -1, 1, res, err);
        out = malloc(no + 1);
        er = malloc(ne + 1);
        if (!out || !er) { free(out); free(er); kill_kernel(sb, NULL); return tm_fail(err, "python sandbox: out of memory"); }
        r = read_all(sb->fd, out, no, sb->deadline);
        if (!r) r = read_all(sb->fd, er, ne, sb->deadline);
    }
    if (r) { free(out); free(er); return call_failed(sb, r, 0, res, err); }
    res->seconds = now_s() - sb->t0;
    out[no] = 0;
    er[ne] = 0;
    res->status = st[0] == 'E' ? PYSB_ERROR : PYSB_OK;
    size_t lim = sb->o.output_limit;
    if (no > lim || total > lim) {
        size_t keep = no > lim ? lim : no;
        while (keep > 0 && keep < no && ((unsigned char)out[keep] & 0xC0) == 0x80) keep--;  // UTF-8 boundary
        char marker[128];
        int nm = snprintf(marker, sizeof marker, "\n... [output truncated: %zu bytes kept of about %lu]\n", keep,
                          (unsigned long)(total > no ? total : no));
        char *t = malloc(keep + (size_t)nm + 1);
        if (!t) { free(out); free(er); return tm_fail(err, "python sandbox: out of memory"); }
        memcpy(t, out, keep);
        memcpy(t + keep, marker, (size_t)nm + 1);
        free(out);
        out = t;
        no = (uint32_t)(keep + (size_t)nm);
        res->truncated = 1;
    }
    res->output = out;
    res->output_len = no;
    res->error = er;
    res->error_len = ne;
    return 0;
}

int pysb_run_n(pysb *sb, const char *code, size_t n, pysb_result *res, tm_error *err) {
    int r = call_begin(sb, code, n, res, err);
    if (r) return r < 0 ? -1 : 0;
    return call_end(sb, res, err);
}

int pysb_run(pysb *sb, const char *code, pysb_result *res, tm_error *err) {
    return pysb_run_n(sb, code, strlen(code), res, err);
}

int pysb_run_many(pysb **sbs, const char **codes, pysb_result *res, int n, tm_error *err) {
    int rc = 0;
    int *sent = calloc((size_t)n, sizeof *sent);
    if (!sent) return tm_fail(err, "python sandbox: out of memory");
    for (int k = 0; k < n; k++) {
        int r = call_begin(sbs[k], codes[k], strlen(codes[k]), &res[k], err);
        sent[k] = r == 0;
        if (r < 0) rc = -1;
    }
    for (int k = 0; k < n; k++)
        if (sent[k] && call_end(sbs[k], &res[k], err)) rc = -1;
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
