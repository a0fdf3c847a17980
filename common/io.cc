#include "common/io.h"

#include <cerrno>
#include <unistd.h>

bool write_all(int fd, const void* buf, std::size_t n) {
    const char* p = static_cast<const char*>(buf);
    while (n > 0) {
        ssize_t written = write(fd, p, n);
        if (written < 0 && errno == EINTR)
            continue;              // interrupted before anything was written
        if (written < 0)
            return false;
        p += written;              // a short write: go round for the rest
        n -= static_cast<std::size_t>(written);
    }
    return true;
}
