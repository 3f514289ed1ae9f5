#!/usr/bin/env bash
# Checks the Vagrantfile without Vagrant or a VM (CI has neither): Ruby parses
# it, then runs it against a stand-in `Vagrant.configure` that records every
# setting. The box must be Debian, and provisioning must run a script of
# this repository that exists (scripts/quickstart.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ruby -c Vagrantfile >/dev/null
ruby - <<'RUBY'
# Records `config.a.b = x` and `config.a.c(args)` as ["a.b=", x], ["a.c", args].
class Recorder < BasicObject
  def initialize(log, path = [])
    @log = log
    @path = path
  end

  def method_missing(name, *args, **options, &block)
    path = @path + [name.to_s]
    @log << [path.join("."), args, options]
    child = ::Recorder.new(@log, path)
    block&.call(child)
    child
  end

  def respond_to_missing?(*) = true
end

module Vagrant
  LOG = []
  def self.configure(version)
    raise "Vagrant.configure(\"2\") expected, got #{version.inspect}" unless version == "2"
    yield Recorder.new(LOG)
  end
end

load "Vagrantfile"
setting = ->(key) { Vagrant::LOG.find { |k, _, _| k == key } }
box = setting.("vm.box=") or abort "Vagrantfile: no config.vm.box"
box[1][0].start_with?("debian/") or abort "Vagrantfile: box #{box[1][0]} is not a Debian box"
provision = setting.("vm.provision") or abort "Vagrantfile: no provisioning"
script = provision[2][:inline].to_s
scripts = script.scan(%r{scripts/[\w.-]+})
scripts.include?("scripts/quickstart.sh") or abort "Vagrantfile: provisioning does not run scripts/quickstart.sh"
scripts.each { |s| File.executable?(s) or abort "Vagrantfile: #{s} is not an executable script here" }
puts "Vagrantfile: box #{box[1][0]}, provisioning runs #{scripts.join(', ')}"
RUBY
