/* l_remote_http.c — mlx.transfer_http: the remote backends over HTTP
 * (WebDAV, S3; core/remote_http.h) for mlx.transfer, which asks for them
 * when no backend of its own serves a URL (lua/l_remote.c).
 *
 * Built into mlx_remote_http.so with libcurl, libxml2 and OpenSSL, so that
 * a remote that is a directory never loads them. The module's value is a
 * light userdata: the NULL-terminated array of the backends, for C only. */
#include <lauxlib.h>

#include "remote.h"
#include "remote_http.h"

static const struct mlx_remote_backend *const http_backends[] = {
    &mlx_remote_webdav,
    &mlx_remote_s3,
    NULL,
};

int luaopen_mlx_transfer_http(lua_State *L)
{
	lua_pushlightuserdata(L, (void *)http_backends);
	return 1;
}
