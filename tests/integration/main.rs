//! One integration-test binary: the real `bamboo-promote` against its simulator on loopback.

mod apply;
mod cli;
mod contracts;
mod environments;
mod exit_codes;
mod fidelity;
mod init;
mod manifests;
mod observe;
mod plan;
mod readme;
mod recipes;
mod red_team;
mod release_day;
mod safety;
mod servers;
mod sim_http;
mod sim_semantics;
mod support;
mod third_party;
mod tls;
mod watch;
mod worlds;
