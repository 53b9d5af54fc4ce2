//! The integration tests, in one binary (one link of tokio, reqwest and the rest instead of one
//! per file): each file of this folder is a module. `tests/it/support/` holds the shared
//! harness (a real registry, the fixture apt archive and Python index, the synthetic base, a
//! CLI runner). Filter by module: `cargo test --test it debian_build::`; the live job runs
//! `cargo test --test it -- --ignored live` (see README.md).

mod support;

mod astro_api;
mod build_registry;
mod check;
mod cli;
mod crash;
mod dags_sync;
mod debian_build;
mod debian_control;
mod debian_deb;
mod debian_deb_live;
mod debian_install;
mod debian_relation;
mod debian_repo;
mod debian_resolve;
mod debian_resolve_apt;
mod debian_version;
mod debian_xz;
mod deploy_astro;
mod deploy_faults;
mod deploy_local;
mod deploy_store;
mod disk_full;
mod dockerignore_cases;
mod example;
mod explain;
mod fuzz;
mod hostile_base;
mod hostile_base_layers;
mod hostile_project;
mod image_formats;
mod instructions;
mod live;
mod live_apt;
mod live_bytecode;
mod live_dags_sync;
mod live_exec;
mod live_python;
mod live_python_local;
mod object_cache;
mod push_ahead;
mod python_build;
mod python_bytecode;
mod python_pep440;
mod python_pep508;
mod python_requirements;
mod python_resolve;
mod python_tags;
mod python_wheel;
mod registry;
mod registry_cache;
mod registry_faults;
mod registry_token;
mod reproducible;
mod secrets;
mod secrets_build;
mod segments;
mod shared_cache;
mod store;
