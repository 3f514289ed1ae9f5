//! The command line: one clap struct per subcommand. Every value is parsed
//! into a checked type here, so a bad name or subnet stops at the boundary
//! with exit status 2 and never reaches a command.

use crate::model::ports::{HostPort, Mapping, NsMapping};
use crate::model::state::Dest;
use crate::model::validate::{self, CableEnd, IfName, NsAddress, NsName};
use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use std::ffi::OsString;
use std::net::IpAddr;

/// Build container networks on this host: namespaces, veth cables, bridges.
#[derive(Debug, Parser)]
#[command(
    name = "nsnet",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted by every command.
#[derive(Debug, Args)]
pub struct Global {
    /// Print the plan as a shell script, exactly what would run, and change nothing
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Like --dry-run, with a comment before each command saying what it does and why
    #[arg(long, global = true)]
    pub explain: bool,
    /// Log each command as it runs, to stderr (-vv: and failures in detail; RUST_LOG also works)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print nothing but results and errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print results as JSON, for scripts
    #[arg(long, global = true)]
    pub json: bool,
    /// Before each step, print what it does and its command, and wait for Enter (q: stop and undo)
    #[arg(long, global = true, conflicts_with_all = ["dry_run", "explain"])]
    pub step: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Network namespaces: create, delete, list, run commands in, attach to processes
    #[command(subcommand)]
    Netns(NetnsCmd),
    /// Veth pairs: a virtual cable between two namespaces, or a namespace and the host
    #[command(subcommand)]
    Veth(VethCmd),
    /// Bridges: a virtual switch with a gateway, and namespaces plugged into it
    #[command(subcommand)]
    Bridge(BridgeCmd),
    /// Outbound NAT: namespaces on a bridge reach whatever the host reaches
    #[command(subcommand)]
    Nat(NatCmd),
    /// Routes inside a namespace, through a neighbour on one of its networks
    #[command(subcommand)]
    Route(RouteCmd),
    /// Published ports: a port of the host that reaches a port of a namespace
    #[command(subcommand)]
    Publish(PublishCmd),
    /// A bridge's firewall: destinations its namespaces may not reach, and exceptions
    #[command(
        subcommand,
        long_about = "A bridge's firewall: destinations its namespaces may not reach, and exceptions.\n\n\
                      Denied destinations are REJECTed (a connection fails at once), optionally logged first; \
                      allowed ones are exceptions, evaluated before the denies, and also open the isolation \
                      between nsnet's bridges (namespaces on one cannot open connections to another's unless \
                      allowed). Replies always pass. Rules of your own go in the NSNET-USER chain, which sees \
                      every packet before nsnet's rules and which nsnet never writes into."
    )]
    Firewall(FirewallCmd),
    /// Show bridges, namespaces, NAT and published ports as the kernel has them, and any drift
    Status,
    /// Draw the topology: a text tree, Graphviz DOT or Mermaid
    Graph {
        /// The kind of picture
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
    },
    /// Check the host for what would break nsnet, and say how to fix it
    Doctor,
    /// Undo what an nsnet that was killed mid-plan left applied
    Recover,
    /// Remove everything nsnet made and put back what it changed
    Down {
        /// Delete namespaces nsnet made even while processes run inside
        #[arg(long)]
        force: bool,
    },
    /// Drop namespaces, bridges or interfaces from nsnet's record, leaving them on the host
    #[command(
        long_about = "Drop namespaces, bridges or interfaces from nsnet's record, leaving them on the host.\n\n\
                      For a name nsnet recorded that now stands for something it did not make (a namespace \
                      or bridge deleted and made again by hand), which nsnet leaves alone. A namespace goes \
                      with its ports and cables, a bridge with its ports; nsnet's own rules for them go too. \
                      What is still the very object nsnet made is forgotten only with --force."
    )]
    Forget {
        /// A namespace, a bridge, or the host end of a port or cable
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Forget objects that are still nsnet's own, leaving them on the host unmanaged
        #[arg(long)]
        force: bool,
    },
    /// A shell (or COMMAND) in a fresh throwaway host, gone on exit: nothing done inside reaches this machine's network
    Lab {
        /// Run this instead of a shell, after `--`
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND"
        )]
        command: Vec<OsString>,
    },
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print a man page (`nsnet man bridge up | man -l -`), or write them all with --dir
    Man {
        /// The command whose page to print, e.g. `bridge up` (default: nsnet's own page)
        #[arg(value_name = "COMMAND")]
        command: Vec<String>,
        /// Write every page into this directory instead: nsnet.1 and one per command (nsnet-bridge-up.1, ...)
        #[arg(long, conflicts_with = "command")]
        dir: Option<std::path::PathBuf>,
    },
}

/// How `graph` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
    Mermaid,
}

#[derive(Debug, Subcommand)]
pub enum FirewallCmd {
    /// Keep the bridge's namespaces from opening connections to these destinations
    Deny {
        /// The bridge
        #[arg(long, default_value = "nsnet0", value_parser = validate::bridge_name)]
        bridge: IfName,
        /// Addresses or CIDRs, IPv4 or IPv6 (e.g. 10.0.0.0/8 192.0.2.7)
        #[arg(required = true, value_name = "CIDR", value_parser = validate::destination)]
        nets: Vec<IpNet>,
        /// Log each refused connection first (rate-limited, prefix "nsnet deny BRIDGE: ")
        #[arg(long)]
        log: bool,
    },
    /// Let the bridge's namespaces reach these destinations despite a deny or the isolation between bridges
    Allow {
        /// The bridge
        #[arg(long, default_value = "nsnet0", value_parser = validate::bridge_name)]
        bridge: IfName,
        /// Addresses or CIDRs, IPv4 or IPv6 (another nsnet bridge's subnet opens the way to it)
        #[arg(required = true, value_name = "CIDR", value_parser = validate::destination)]
        nets: Vec<IpNet>,
    },
    /// Drop these destinations from the bridge's denies and allows
    Del {
        /// The bridge
        #[arg(long, default_value = "nsnet0", value_parser = validate::bridge_name)]
        bridge: IfName,
        /// Addresses or CIDRs, as given to deny or allow
        #[arg(required = true, value_name = "CIDR", value_parser = validate::destination)]
        nets: Vec<IpNet>,
    },
    /// Show each bridge's denies, allows and the bridges it is isolated from
    List {
        /// Only this bridge
        #[arg(long, value_parser = validate::bridge_name)]
        bridge: Option<IfName>,
    },
}

#[derive(Debug, Subcommand)]
pub enum NatCmd {
    /// Masquerade the bridge's subnet on its way out, with forwarding on
    Up {
        /// The bridge
        #[arg(long, default_value = "nsnet0", value_parser = validate::bridge_name)]
        bridge: IfName,
        /// Only through this interface (default: any interface but the bridge)
        #[arg(long)]
        out: Option<IfName>,
        /// With --out: the subnet leaves via this gateway on --out, by a routing table and ip rules of its own, whatever the host's default route
        #[arg(long, value_name = "GW", requires = "out")]
        via: Option<std::net::Ipv4Addr>,
        /// With --via: the routing table number (default: the first free one from 100)
        #[arg(long, value_name = "N", requires = "via", value_parser = clap::value_parser!(u32).range(1..253))]
        table: Option<u32>,
    },
    /// Remove the bridge's NAT, and put back what nat up changed
    Down {
        /// The bridge
        #[arg(long, default_value = "nsnet0", value_parser = validate::bridge_name)]
        bridge: IfName,
    },
}

#[derive(Debug, Subcommand)]
pub enum PublishCmd {
    /// Publish ports of a namespace: HOSTPORT:PORT, optionally /tcp (default) or /udp
    Add {
        /// The namespace, on an nsnet bridge
        ns: NsName,
        /// Mappings such as 8080:80 or 5353:53/udp
        #[arg(required = true, value_name = "HOSTPORT:PORT[/PROTO]")]
        mappings: Vec<Mapping>,
        /// Publish on this host address only, IPv4 or IPv6 (default: all of them, in each family the namespace has, as `docker run -p` does)
        #[arg(long)]
        host_ip: Option<IpAddr>,
        /// The bridge to publish through (default: the namespace's first)
        #[arg(long, value_parser = validate::bridge_name)]
        bridge: Option<IfName>,
        /// Publish even a host port a program on the host listens on, or another tool's rule forwards
        #[arg(long)]
        force: bool,
        /// Only connections from this source reach the ports, from anywhere: another machine, the host, a namespace (an address or CIDR; repeatable, or comma-separated). Again with other sources: they replace the old ones
        #[arg(long, value_name = "CIDR", value_parser = validate::destination, value_delimiter = ',')]
        allow: Vec<IpNet>,
    },
    /// Stop publishing host ports of a namespace
    Del {
        /// The namespace
        ns: NsName,
        /// Host ports such as 8080 or 5353/udp
        #[arg(required = true, value_name = "HOSTPORT[/PROTO]")]
        ports: Vec<HostPort>,
    },
    /// List published ports
    List,
}

#[derive(Debug, Subcommand)]
pub enum NetnsCmd {
    /// Create namespaces, with loopback up (existing ones are left as they are)
    Add {
        /// Names of the namespaces
        #[arg(required = true, value_name = "NAME")]
        names: Vec<NsName>,
        /// A name server for the namespaces (repeatable): /etc/netns/NS/resolv.conf, their /etc/resolv.conf inside `ip netns exec`
        #[arg(long, value_name = "IP")]
        dns: Vec<IpAddr>,
    },
    /// Delete namespaces nsnet created, with their bridge ports and cables
    Del {
        /// Names of the namespaces
        #[arg(required = true, value_name = "NAME")]
        names: Vec<NsName>,
        /// Delete even while processes run inside (they keep running, cut off from every network)
        #[arg(long)]
        force: bool,
    },
    /// List namespaces: those nsnet made, attached, and all others
    List,
    /// Run a command inside a namespace; its exit status becomes nsnet's
    Exec {
        /// The namespace
        name: NsName,
        /// The command and its arguments, after `--`
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<OsString>,
    },
    /// Give a running process's network namespace a name (e.g. a Docker container's)
    Attach {
        /// The name to give it
        name: NsName,
        /// The process, e.g. `docker inspect -f '{{.State.Pid}}' box`
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        pid: u32,
    },
    /// Remove a name made by `attach`, leaving the process and its namespace alone
    Detach {
        /// The name
        name: NsName,
    },
}

#[derive(Debug, Subcommand)]
pub enum VethCmd {
    /// Lay a cable between A and B (either may be `host`), both ends up
    Add {
        /// One end: a namespace, NS:IF to name its interface (default: vc-PEER), or `host`
        a: CableEnd,
        /// The other end: a namespace, NS:IF, or `host`
        b: CableEnd,
        /// Address the ends: A gets the subnet's first host address, B the second (once per family: IPv4 and IPv6)
        #[arg(long, value_parser = validate::any_subnet, value_name = "CIDR")]
        subnet: Vec<IpNet>,
        /// A name server for the namespaces at the ends (repeatable), as `netns add --dns`
        #[arg(long, value_name = "IP")]
        dns: Vec<IpAddr>,
    },
    /// Remove the cable between A and B (both ends), and namespaces made only for it
    Del {
        /// One end (NS:IF is taken as NS)
        a: CableEnd,
        /// The other end
        b: CableEnd,
        /// Delete namespaces made for the cable even while processes run inside
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RouteCmd {
    /// Add a route in NS: `nsnet route add red 192.168.1.0/24 via 192.168.15.5`
    Add {
        /// The namespace
        ns: NsName,
        /// Where to: a CIDR, an address, or `default`
        #[arg(value_name = "DEST")]
        to: Dest,
        /// The word `via`
        #[arg(value_name = "via", value_parser = ["via"])]
        via_word: String,
        /// The gateway: a neighbour on one of the namespace's networks from nsnet
        #[arg(value_name = "GW")]
        via: IpAddr,
    },
    /// Remove a route from NS: one nsnet added, or the default route of a bridge port
    Del {
        /// The namespace
        ns: NsName,
        /// The route's destination: a CIDR, an address, or `default`
        #[arg(value_name = "DEST")]
        to: Dest,
    },
}

#[derive(Debug, Subcommand)]
pub enum BridgeCmd {
    /// Put namespaces on a bridge, creating whatever is missing
    Up(BridgeUp),
    /// Take namespaces off a bridge or, with none named, remove the bridge
    Down(BridgeDown),
}

#[derive(Debug, Args)]
pub struct BridgeUp {
    /// Namespaces to plug in, addressed in this order
    #[arg(required = true, value_name = "NS")]
    pub namespaces: Vec<NsName>,
    /// The bridge
    #[arg(long, default_value = "nsnet0", value_parser = validate::bridge_name)]
    pub bridge: IfName,
    /// The bridge's subnet (default: a free /24 from 10.200.0.0/16, 172.30.0.0/16, 192.168.200.0/21); once more with an IPv6 subnet for dual stack
    #[arg(long, value_parser = validate::any_subnet, value_name = "CIDR")]
    pub subnet: Vec<IpNet>,
    /// Dual stack: an IPv6 subnet too, a ULA /64 nsnet chooses unless --subnet gives one
    #[arg(long)]
    pub ipv6: bool,
    /// The host's address on a new bridge, the namespaces' gateway (default: the subnet's first); once per family
    #[arg(long, value_name = "IP")]
    pub gateway: Vec<IpAddr>,
    /// A namespace's own address on the bridge (repeatable, once per family); the others take the lowest free
    #[arg(long, value_name = "NS=IP")]
    pub address: Vec<NsAddress>,
    /// No default route in the namespaces: only the route to the bridge's subnet
    #[arg(long)]
    pub no_default_route: bool,
    /// A name server for the namespaces (repeatable), as `netns add --dns`
    #[arg(long, value_name = "IP")]
    pub dns: Vec<IpAddr>,
    /// The name of the interface inside each namespace (default: eth0; in a namespace nsnet did not make that has eth0, the next free ethN)
    #[arg(long)]
    pub ifname: Option<IfName>,
    /// Also give the bridge outbound NAT, as `nsnet nat up` does
    #[arg(long)]
    pub nat: bool,
    /// With --nat: masquerade only traffic leaving through this interface
    #[arg(long, requires = "nat")]
    pub out: Option<IfName>,
    /// Also publish a port of a namespace, as `nsnet publish add` does (repeatable)
    #[arg(long, value_name = "NS=HOSTPORT:PORT[/PROTO]")]
    pub publish: Vec<NsMapping>,
}

#[derive(Debug, Args)]
pub struct BridgeDown {
    /// Namespaces to take off (default: all, and the bridge itself)
    #[arg(value_name = "NS")]
    pub namespaces: Vec<NsName>,
    /// The bridge
    #[arg(long, default_value = "nsnet0", value_parser = validate::bridge_name)]
    pub bridge: IfName,
    /// Delete namespaces nsnet made even while processes run inside
    #[arg(long)]
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exec_takes_everything_after_the_name() {
        let cli = Cli::try_parse_from([
            "nsnet", "netns", "exec", "red", "--", "ping", "-c", "1", "x",
        ])
        .unwrap();
        let Command::Netns(NetnsCmd::Exec { command, .. }) = cli.command else {
            panic!()
        };
        assert_eq!(command, ["ping", "-c", "1", "x"]);
    }
}
