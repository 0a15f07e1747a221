// Defaults of the Linux runtime that more than one package applies.

/**
 * The runtime's default PATH: what a process gets when its image's config sets none. The value runc's
 * and moby's (system.DefaultPathEnv for Linux) and BuildKit's (oci.DefaultPathEnvUnix) define; the
 * parser adds it to a stage's environment, a RUN step and a container start with it.
 */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
