#!/usr/bin/env node
// Prints the compiler and linker flags binding.gyp needs for libtorch.
//
// Two layouts are supported:
//   - Debian's `libtorch-dev` (the default): headers under /usr/include, libraries on the
//     system linker path.
//   - A pytorch.org libtorch zip (CPU or CUDA), named by the LIBTORCH environment variable:
//     headers under $LIBTORCH/include, libraries under $LIBTORCH/lib (baked in as an rpath so
//     the addon finds them at run time without LD_LIBRARY_PATH).
// CUDA support is switched on when the chosen libtorch ships libtorch_cuda.so. Those
// libraries register their kernels from static initialisers, so they are linked with
// --no-as-needed: otherwise the linker drops them and `cuda` tensors fail at run time.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function layout() {
  const root = process.env.LIBTORCH;
  if (root) {
    const include = path.join(root, 'include');
    const lib = path.join(root, 'lib');
    if (!fs.existsSync(path.join(include, 'torch'))) {
      throw new Error(`LIBTORCH=${root}: expected headers in ${include}/torch (a pytorch.org libtorch unpacked here)`);
    }
    return { includes: [include, path.join(include, 'torch/csrc/api/include')], libDir: lib };
  }
  const include = '/usr/include';
  if (!fs.existsSync(path.join(include, 'torch/csrc/api/include'))) {
    throw new Error("libtorch headers not found in /usr/include/torch: install Debian's libtorch-dev, or set LIBTORCH to an unpacked pytorch.org libtorch");
  }
  const libDir = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib'].find((d) => fs.existsSync(path.join(d, 'libtorch.so'))) ?? '/usr/lib';
  return { includes: [include, path.join(include, 'torch/csrc/api/include')], libDir };
}

const { includes, libDir } = layout();
const hasCuda = fs.existsSync(path.join(libDir, 'libtorch_cuda.so'));
// The collectives (native/kiln_dist.cc) need c10d's ProcessGroupGloo.hpp, which includes Gloo's
// own headers: Debian ships those in libgloo-dev, a pytorch.org libtorch does not ship them at
// all. Without them the addon still builds, and creating a process group says what to install.
const searchDirs = [...includes, '/usr/include'];
const hasGloo =
  searchDirs.some((d) => fs.existsSync(path.join(d, 'torch/csrc/distributed/c10d/ProcessGroupGloo.hpp'))) &&
  searchDirs.some((d) => fs.existsSync(path.join(d, 'gloo/config.h')));
const what = process.argv[2];
if (what === '--includes') {
  // /usr/include is already on the default search path; repeating it as -I breaks #include_next.
  console.log(includes.filter((d) => d !== '/usr/include').join(' '));
} else if (what === '--libs') {
  const libs = [`-L${libDir}`, `-Wl,-rpath,${libDir}`, '-Wl,--no-as-needed', '-ltorch', '-ltorch_cpu', '-lc10'];
  if (hasCuda) libs.push('-ltorch_cuda', '-lc10_cuda');
  libs.push('-Wl,--as-needed');
  console.log(libs.join(' '));
} else if (what === '--defines') {
  console.log([hasCuda ? 'KILN_WITH_CUDA=1' : 'KILN_WITH_CUDA=0', ...(hasGloo ? ['KILN_WITH_GLOO=1', 'USE_C10D_GLOO'] : ['KILN_WITH_GLOO=0'])].join(' '));
} else {
  console.error('usage: libtorch.cjs --includes|--libs|--defines');
  process.exit(2);
}
