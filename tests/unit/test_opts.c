/* The command line: defaults, -o parsing, refusals, FUSE pass-through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/opts.h"

#define ARGV(...) ((const char *const[]){ "acrfs", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((const char *const[]){ "acrfs", __VA_ARGS__ }) / sizeof(const char *)))
#define PARSE(o, e, ...) opts_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), o, e)

static void test_defaults(void **s)
{
	struct acrfs_opts o;
	struct buf e = BUF_INIT;

	(void)s;
	assert_int_equal(PARSE(&o, &e, "myreg.azurecr.io", "/mnt/acr"), 0);
	assert_string_equal(o.registry, "myreg.azurecr.io");
	assert_string_equal(o.mountpoint, "/mnt/acr");
	assert_int_equal(o.ttl, 60);
	assert_int_equal(o.timeout, 30);
	assert_false(o.foreground);
	assert_false(o.ro);
	assert_null(o.ca_file);
	/* The registry names the mount; images' setuid files and devices never count. */
	assert_int_equal(o.fuse_argv.n, 3);
	assert_string_equal(o.fuse_argv.v[2], "subtype=acrfs,fsname=myreg.azurecr.io,nosuid,nodev");
	opts_free(&o);
}

static void test_options(void **s)
{
	struct acrfs_opts o;
	struct buf e = BUF_INIT;

	(void)s;
	assert_int_equal(PARSE(&o, &e, "-f", "-d", "-o", "ttl=0,ca_file=/x/ca.pem,ro",
			       "-oallow_other,fsname=acr", "http://127.0.0.1:5000", "m"),
			 0);
	assert_true(o.foreground);
	assert_true(o.debug);
	assert_true(o.ro);
	assert_true(o.allow_other);
	assert_int_equal(o.ttl, 0);
	assert_string_equal(o.ca_file, "/x/ca.pem");
	assert_int_equal(o.fuse_argv.n, 3);
	assert_string_equal(o.fuse_argv.v[1], "-o");
	/* ro reaches the kernel; allow_other brings default_permissions. */
	assert_string_equal(o.fuse_argv.v[2],
			    "allow_other,fsname=acr,default_permissions,ro,subtype=acrfs,nosuid,nodev");
	opts_free(&o);

	assert_int_equal(PARSE(&o, &e, "-o", "timeout=5", "r", "m"), 0);
	assert_int_equal(o.timeout, 5);
	for (size_t i = 0; i < o.fuse_argv.n; i++) /* ours, not FUSE's */
		assert_null(strstr(o.fuse_argv.v[i], "timeout"));
	opts_free(&o);
	assert_int_equal(PARSE(&o, &e, "-o", "timeout=0", "r", "m"), -EINVAL);
	assert_non_null(strstr(buf_cstr(&e), "timeout=0"));
	assert_int_equal(PARSE(&o, &e, "-o", "timeout=3601", "r", "m"), -EINVAL);
	assert_int_equal(PARSE(&o, &e, "-o", "timeout=1x", "r", "m"), -EINVAL);
	buf_release(&e);

	assert_int_equal(PARSE(&o, &e, "r", "m"), 0);
	assert_int_equal(o.acr, REGISTRY_ACR_AUTO);
	opts_free(&o);
	assert_int_equal(PARSE(&o, &e, "-o", "acr=off", "r", "m"), 0);
	assert_int_equal(o.acr, REGISTRY_ACR_OFF);
	for (size_t i = 0; i < o.fuse_argv.n; i++) /* ours, not FUSE's */
		assert_null(strstr(o.fuse_argv.v[i], "acr="));
	opts_free(&o);
	assert_int_equal(PARSE(&o, &e, "-o", "acr=on", "r", "m"), 0);
	assert_int_equal(o.acr, REGISTRY_ACR_ON);
	opts_free(&o);
	assert_int_equal(PARSE(&o, &e, "-o", "acr=maybe", "r", "m"), -EINVAL);
	assert_non_null(strstr(buf_cstr(&e), "acr=maybe"));
	buf_release(&e);

	assert_int_equal(PARSE(&o, &e, "r", "m"), 0);
	assert_int_equal(o.mem_max, 512ull << 20); /* the default */
	opts_free(&o);
	assert_int_equal(PARSE(&o, &e, "-o", "mem_max=0", "r", "m"), 0);
	assert_int_equal(o.mem_max, 0);
	for (size_t i = 0; i < o.fuse_argv.n; i++) /* ours, not FUSE's */
		assert_null(strstr(o.fuse_argv.v[i], "mem_max"));
	opts_free(&o);
	assert_int_equal(PARSE(&o, &e, "-o", "mem_max=lots", "r", "m"), -EINVAL);
	assert_non_null(strstr(buf_cstr(&e), "mem_max=lots"));
	buf_release(&e);

	assert_int_equal(PARSE(&o, &e, "r", "m"), 0);
	assert_int_equal(o.index_max, 1ull << 30); /* the default */
	opts_free(&o);
	assert_int_equal(PARSE(&o, &e, "-o", "index_max=64M", "r", "m"), 0);
	assert_int_equal(o.index_max, 64ull << 20);
	for (size_t i = 0; i < o.fuse_argv.n; i++) /* ours, not FUSE's */
		assert_null(strstr(o.fuse_argv.v[i], "index_max"));
	opts_free(&o);
	assert_int_equal(PARSE(&o, &e, "-o", "index_max=0", "r", "m"), 0);
	assert_int_equal(o.index_max, 0);
	opts_free(&o);

	assert_int_equal(PARSE(&o, &e, "-o", "cache_max=512M,threads=4,username=u,mem_max=2G", "r",
			       "m"),
			 0);
	assert_int_equal(o.cache_max, 512ull << 20);
	assert_int_equal(o.mem_max, 2ull << 30);
	assert_int_equal(o.threads, 4);
	assert_string_equal(o.username, "u");
	opts_free(&o);
}

/* What an fstab line or a mount unit hands over through mount.fuse3. */
static void test_fstab(void **s)
{
	struct acrfs_opts o;
	struct buf e = BUF_INIT;

	(void)s;
	assert_int_equal(PARSE(&o, &e, "myreg.azurecr.io", "/mnt/acr", "-o",
			       "rw,ttl=300,cache_dir=/var/cache/acrfs,allow_other,_netdev,nofail,"
			       "noauto,x-systemd.automount,x-systemd.mount-timeout=30,user,"
			       "comment=x,dev,suid,docker_config=/etc/acrfs,ro"),
			 0);
	assert_true(o.ro);
	assert_int_equal(o.ttl, 300);
	assert_string_equal(o.cache_dir, "/var/cache/acrfs");
	assert_string_equal(o.docker_config, "/etc/acrfs");
	assert_true(o.allow_other);
	assert_string_equal(o.fuse_argv.v[2], "allow_other,default_permissions,ro,"
					      "subtype=acrfs,fsname=myreg.azurecr.io,nosuid,nodev");
	opts_free(&o);
	/* mount.fuse3 -o drop_privileges: the mount point is an open /dev/fuse. */
	assert_int_equal(PARSE(&o, &e, "r", "/dev/fd/3", "-o", "drop_privileges,setuid=acr,rw"),
			 0);
	assert_false(o.ro);
	assert_string_equal(o.mountpoint, "/dev/fd/3");
	assert_string_equal(o.fuse_argv.v[2], "subtype=acrfs,fsname=r,nosuid,nodev");
	opts_free(&o);
	/* A registry with ',' or '\\' in its name is escaped for FUSE. */
	assert_int_equal(PARSE(&o, &e, "a,b\\c", "m"), 0);
	assert_string_equal(o.fuse_argv.v[2], "subtype=acrfs,fsname=a\\,b\\\\c,nosuid,nodev");
	opts_free(&o);
	assert_int_equal(PARSE(&o, &e, "-o", "docker_config", "r", "m"), -EINVAL);
	assert_non_null(strstr(buf_cstr(&e), "docker_config"));
	buf_release(&e);
}

static void test_refusals(void **s)
{
	struct acrfs_opts o;
	struct buf e = BUF_INIT;

	(void)s;
	assert_int_equal(PARSE(&o, &e, "-o", "password=hunter2", "r", "m"), -EINVAL);
	assert_non_null(strstr(buf_cstr(&e), "ACRFS_PASSWORD"));
	assert_null(strstr(buf_cstr(&e), "hunter2"));
	assert_int_equal(PARSE(&o, &e, "-o", "ttl=abc", "r", "m"), -EINVAL);
	assert_int_equal(PARSE(&o, &e, "-o", "ttl=-1", "r", "m"), -EINVAL);
	assert_int_equal(PARSE(&o, &e, "-o", "ca_file", "r", "m"), -EINVAL);
	assert_int_equal(PARSE(&o, &e, "r"), -EINVAL);
	assert_int_equal(PARSE(&o, &e, "r", "m", "extra"), -EINVAL);
	assert_int_equal(PARSE(&o, &e, "--bogus", "r", "m"), -EINVAL);
	assert_int_equal(PARSE(&o, &e, "-o"), -EINVAL);
	assert_int_equal(PARSE(&o, &e, "-o", "cache_max=lots", "r", "m"), -EINVAL);
	assert_int_equal(PARSE(&o, &e, "-o", "index_max=lots", "r", "m"), -EINVAL);
	assert_int_equal(PARSE(&o, &e, "-o", "password_stdin,password_file=/p", "r", "m"), -EINVAL);
	buf_release(&e);
}

static void test_help_version(void **s)
{
	struct acrfs_opts o;
	struct buf e = BUF_INIT;

	(void)s;
	assert_int_equal(PARSE(&o, &e, "--help"), 0);
	assert_true(o.help);
	opts_free(&o);
	assert_int_equal(PARSE(&o, &e, "-V"), 0);
	assert_true(o.version);
	opts_free(&o);
	assert_int_equal(PARSE(&o, &e, "--", "-weird-registry", "m"), 0);
	assert_string_equal(o.registry, "-weird-registry");
	opts_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_fstab),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_help_version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
