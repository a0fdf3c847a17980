// jail: runs one program under test in namespaces of its own, so that whatever
// it does, the checker can end it and everything it started, and it leaves no
// file behind in /tmp.
//
//   jail [--processes N] [--tmp-mib M] [--keep DIR]... -- PROGRAM ARGS...
//
// What the program gets:
//   * a user namespace that maps only the uid and gid it already has: inside,
//     it is the same ordinary user, and it holds no capability once it execs (a
//     uid 0, the checker's in a namespace of its own, is seen inside as 65534,
//     so that even there the program is not root);
//   * a PID namespace: when the namespace's first process (our "init") ends, the
//     kernel SIGKILLs every process left in it, however they forked or setsid();
//   * a mount namespace with its own empty /tmp, /var/tmp and /dev/shm (tmpfs of
//     at most M MiB each), which disappear with it; each --keep DIR (the checker's
//     own temporary directory) is bound back in at the same path (--keep /tmp
//     keeps the real /tmp);
//   * at most N processes and threads in the namespace (RLIMIT_NPROC; since Linux
//     5.14 it counts the processes of the uid *in this user namespace*, not all
//     of the user's processes on the machine: kernel/ucount.c, is_rlimit_overlimit).
//
// The processes, seen from the checker:
//   jail (its pid is the one the checker started)
//    └─ init: pid 1 in the new namespace; reaps orphans, ignores every signal
//        └─ PROGRAM: pid 2; its pid outside is found in /proc (…/children)
// Signals the checker sends to the process group (a Ctrl-C, a SIGTERM to stop a
// server) reach PROGRAM directly: the group is inherited across namespaces. The
// jail and init ignore them, so the program decides how to end. The jail exits
// the way PROGRAM did (the same exit status, or killed by the same signal), and
// if the checker dies, so does the jail, then init, then everything in the namespace.
//
// Statically linked, so that LD_PRELOAD (the lock tracer, the fault injector)
// and the sanitizers' environment reach only PROGRAM.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <string>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

constexpr int kCannotJail = 125;   // like env(1) and timeout(1): the tool failed, not the program

struct Options {
    long processes = 0;              // 0: no limit set here
    long tmp_mib = 256;
    std::vector<std::string> keep;   // directories under /tmp to bind back in
    char** program = nullptr;
};

[[noreturn]] void die(const char* what, const std::string& detail = "") {
    std::fprintf(stderr, "jail: %s%s%s: %s\n", what, detail.empty() ? "" : " ", detail.c_str(),
                 std::strerror(errno));
    std::exit(kCannotJail);
}

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: jail [--processes N] [--tmp-mib M] [--keep DIR]... -- PROGRAM ARGS...\n");
    std::exit(kCannotJail);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string word = argv[i];
        if (word == "--" && i + 1 < argc) {
            o.program = argv + i + 1;
            return o;
        }
        if (i + 1 >= argc)
            usage();
        if (word == "--processes")
            o.processes = std::atol(argv[++i]);
        else if (word == "--tmp-mib")
            o.tmp_mib = std::atol(argv[++i]);
        else if (word == "--keep")
            o.keep.push_back(argv[++i]);
        else
            usage();
    }
    usage();
}

void write_file(const char* path, const std::string& text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        die("cannot write", path);
    close(fd);
}

// Inside, the program keeps the uid and gid it has outside, except 0: root keeps
// its capabilities across exec, any other uid loses them. Without setgroups "deny",
// an unprivileged process may not write a gid_map (user_namespaces(7)).
constexpr unsigned kNobody = 65534;

void map_own_ids(uid_t uid, gid_t gid) {
    auto inside = [](unsigned id) { return std::to_string(id == 0 ? kNobody : id); };
    write_file("/proc/self/setgroups", "deny");
    write_file("/proc/self/uid_map", inside(uid) + " " + std::to_string(uid) + " 1");
    write_file("/proc/self/gid_map", inside(gid) + " " + std::to_string(gid) + " 1");
}

bool is_under(const std::string& path, const std::string& top) {
    return path.size() > top.size() && path.compare(0, top.size(), top) == 0 && path[top.size()] == '/';
}

bool is_kept(const Options& o, const std::string& top) {   // --keep /tmp: the real one
    for (const auto& dir : o.keep)
        if (dir == top)
            return true;
    return false;
}

void make_dirs(const std::string& path) {
    for (size_t slash = 1; slash != std::string::npos; slash = path.find('/', slash + 1))
        mkdir(path.substr(0, slash).c_str(), 0755);
    mkdir(path.c_str(), 0755);
}

// An empty tmpfs over each temporary directory; the --keep directories under it are
// opened before they are hidden, then bound back in through /proc/self/fd.
void private_temporary_dirs(const Options& o) {
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        die("cannot make the mounts private");
    std::string size = "size=" + std::to_string(o.tmp_mib) + "m,mode=1777";
    for (const char* top : {"/tmp", "/var/tmp", "/dev/shm"}) {
        struct stat st;
        if (stat(top, &st) != 0 || !S_ISDIR(st.st_mode) || is_kept(o, top))
            continue;
        std::vector<std::pair<std::string, int>> kept;
        for (const auto& dir : o.keep)
            if (is_under(dir, top)) {
                int fd = open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (fd >= 0)
                    kept.emplace_back(dir, fd);
                else if (errno != EACCES && errno != ENOENT)   // what it cannot reach, it loses nothing by
                    die("cannot open", dir);
            }
        if (mount("tmpfs", top, "tmpfs", MS_NOSUID | MS_NODEV, size.c_str()) != 0)
            die("cannot mount a tmpfs on", top);
        for (const auto& [dir, fd] : kept) {
            make_dirs(dir);
            std::string source = "/proc/self/fd/" + std::to_string(fd);
            if (mount(source.c_str(), dir.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
                die("cannot bind back", dir);
            close(fd);
        }
    }
}

void limit_processes(long processes) {
    if (processes <= 0)
        return;
    rlimit limit{};
    getrlimit(RLIMIT_NPROC, &limit);
    rlim_t wanted = static_cast<rlim_t>(processes);
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < wanted)
        wanted = limit.rlim_max;          // never above what it already is
    limit.rlim_cur = limit.rlim_max = wanted;
    if (setrlimit(RLIMIT_NPROC, &limit) != 0)
        die("cannot limit the processes");
}

// In its own user namespace the program starts with every capability there; a uid
// other than 0 loses them at exec, and the bounding set is emptied so that no file
// capability or setuid program can give one back (setpriv does the same as root).
void drop_capabilities() {
    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
            die("cannot drop capability", std::to_string(cap));
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        die("cannot set no_new_privs");
}

// Standard input and output belong to PROGRAM: the checker reads them until end of
// file, which must not wait for the jail or init.
void let_go_of_stdio() {
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd <= 2; fd++)
        dup2(null, fd);
    close(null);
}

// pid 1 of the namespace: starts PROGRAM, reaps every orphan, and ends when PROGRAM
// ends, telling the jail how (the kernel then kills whatever PROGRAM left running).
[[noreturn]] void init(const Options& o, int status_pipe) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    pid_t program = fork();
    if (program < 0)
        die("cannot fork");
    if (program == 0) {
        limit_processes(o.processes);
        drop_capabilities();
        execvp(o.program[0], o.program);
        std::fprintf(stderr, "jail: cannot run %s: %s\n", o.program[0], std::strerror(errno));
        _exit(127);
    }
    let_go_of_stdio();
    for (;;) {
        int status = 0;
        pid_t ended = wait(&status);
        if (ended == program) {
            ssize_t n = write(status_pipe, &status, sizeof status);
            _exit(n == sizeof status ? 0 : kCannotJail);
        }
        if (ended < 0 && errno == ECHILD)
            _exit(kCannotJail);
    }
}

void ignore(int) {}

// A handler, not SIG_IGN: a handled signal is reset by exec, an ignored one is not.
void ignore_signals() {
    struct sigaction action{};
    action.sa_handler = ignore;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD)
            sigaction(sig, &action, nullptr);
}

// Ends the jail the way PROGRAM ended.
[[noreturn]] void end_like(int status) {
    if (WIFEXITED(status))
        _exit(WEXITSTATUS(status));
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
    signal(sig, SIG_DFL);
    sigset_t just_this;
    sigemptyset(&just_this);
    sigaddset(&just_this, sig);
    sigprocmask(SIG_UNBLOCK, &just_this, nullptr);
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    raise(sig);
    _exit(128 + sig);
}

}  // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    prctl(PR_SET_PDEATHSIG, SIGKILL);     // set again: a change of uid (setpriv) cleared it
    uid_t uid = getuid();
    gid_t gid = getgid();
    int status_pipe[2];
    if (pipe2(status_pipe, O_CLOEXEC) != 0)
        die("cannot make a pipe");
    if (unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS) != 0)
        die("cannot make namespaces (user, PID, mount)");
    map_own_ids(uid, gid);
    private_temporary_dirs(o);

    pid_t first = fork();                 // the first child is the new namespace's pid 1
    if (first < 0)
        die("cannot fork");
    if (first == 0) {
        close(status_pipe[0]);
        init(o, status_pipe[1]);
    }
    close(status_pipe[1]);
    ignore_signals();
    let_go_of_stdio();
    int status = 0;
    while (waitpid(first, &status, 0) < 0 && errno == EINTR) {
    }
    int program_status = 0;
    if (read(status_pipe[0], &program_status, sizeof program_status) == sizeof program_status)
        end_like(program_status);
    end_like(status);                     // init was killed (SIGKILL): so is the jail
}
