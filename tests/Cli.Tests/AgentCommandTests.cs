using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace SecureChannels.Cli.Tests;

/// <summary>
/// <c>securechannels agent listen|send</c>, through real processes: the README quickstart end to end (its commands are
/// these, word for word), a refusal by the listener's policy, an address nobody holds, escaping, SIGTERM, and usage errors.
/// </summary>
public sealed partial class AgentCommandTests(AgentQuickstart quickstart) : IClassFixture<AgentQuickstart>
{
    [Fact]
    public async Task Quickstart_send_prints_the_listeners_verified_principal_and_the_reply_and_the_listener_prints_the_message_and_the_senders_principal()
    {
        var before = quickstart.Listener.Lines.Length;

        var sent = (await quickstart.RunAsync(AgentQuickstart.Send)).Succeeded();

        Assert.Equal(
            [
                $"channel to billing: peer {quickstart.Billing} principal system:billing hops 1 expires {quickstart.BillingExpiry} attributes relay-name=billing",
                "reply ok",
                "closed Normal",
            ],
            sent.Lines);
        var (channel, lines) = await ChannelAsync(quickstart.Alice, before);
        Assert.Equal(
            [
                $"channel {channel} from peer {quickstart.Alice} principal user:alice hops 1 expires {quickstart.AliceExpiry} attributes role=assistant",
                $"channel {channel} message hello",
                $"channel {channel} closed Normal",
            ],
            lines);
        Assert.DoesNotContain(quickstart.Sandbox.History, r => (r.Stdout + r.Stderr).Contains(CliSandbox.Passphrase, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_sender_the_listeners_policy_refuses_exits_1_with_AccessDenied()
    {
        var before = quickstart.Listener.Lines.Length;
        var refused = (await quickstart.RunAsync(AgentQuickstart.MallorySend)).Exited(1);

        Assert.Equal(string.Empty, refused.Stdout);
        Assert.Equal("error: opening a channel to billing: AccessDenied (3) from the peer: The responder refused this side: AccessDenied.", refused.Stderr.Trim());
        Assert.Equal(
            $"refused peer {quickstart.Mallory} principal user:mallory: AccessDenied",
            await quickstart.Listener.WaitForLineAsync(l => l.StartsWith("refused ", StringComparison.Ordinal), before));
    }

    [Fact]
    public async Task An_address_nobody_holds_exits_1_with_the_relays_reason()
    {
        var unknown = (await quickstart.RunAsync(With(AgentQuickstart.Send, "--to", "nobody"))).Exited(1);

        Assert.Equal(string.Empty, unknown.Stdout);
        Assert.StartsWith("error: opening a channel to nobody: relay Unreachable (1): ", unknown.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_identifier_is_an_address_and_the_listener_escapes_what_the_peer_wrote()
    {
        var before = quickstart.Listener.Lines.Length;
        string[] send = [.. With(AgentQuickstart.Send, "--to", quickstart.Billing).Where(a => a != "--wait-reply").SkipLast(1), "tab\tline\nansi\u001b[31m rtl\u202e back\\slash é"];

        var sent = (await quickstart.RunAsync(send)).Succeeded();

        Assert.Equal(["closed Normal"], sent.Lines.Skip(1));
        Assert.StartsWith($"channel to {quickstart.Billing}: peer {quickstart.Billing} ", sent.Lines[0], StringComparison.Ordinal);
        var (channel, lines) = await ChannelAsync(quickstart.Alice, before);
        Assert.Equal($@"channel {channel} message tab\tline\nansi\u001b[31m rtl\u202e back\\slash é", lines[1]);
    }

    [Fact]
    public async Task Listen_stops_on_SIGTERM_with_exit_0_and_its_open_channels_end_with_GoingAway()
    {
        await using var listener = RunningCli.Start(quickstart.Sandbox, AgentQuickstart.MalloryListen(quickstart.RelayEndPoint));
        Assert.Equal(
            $"listening as {quickstart.Mallory} on relay {quickstart.Relay} at {quickstart.RelayEndPoint} (names: none)",
            await listener.WaitForLineAsync(l => l.StartsWith("listening as ", StringComparison.Ordinal)));
        await using var sender = RunningCli.Start(quickstart.Sandbox, quickstart.Arguments(With(AgentQuickstart.Send, "--to", quickstart.Mallory)));
        await listener.WaitForLineAsync(l => l.EndsWith(" message hello", StringComparison.Ordinal));

        var (code, stderr) = await listener.StopAsync();
        var (senderCode, senderStderr) = await sender.WaitForExitAsync();

        Assert.True(code == 0, stderr);
        Assert.Equal(1, senderCode);
        Assert.Equal("error: waiting for a reply: GoingAway (8) from the peer: The peer ended the channel: GoingAway.", senderStderr.Trim());
        Assert.DoesNotContain(CliSandbox.Passphrase, stderr + senderStderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("send", "--to", "not an address!", "error: --to: 'not an address!' is not an address")]
    [InlineData("send", "--relay", "localhost:7300", "error: --relay: 'localhost:7300' is not an IP address and port")]
    [InlineData("send", "--relay-id", "nowhere.identity", "error: --relay-id: 'nowhere.identity' is neither an identifier")]
    [InlineData("send", "--timeout", "0", "error: --timeout must be from 1 to 86400 seconds.")]
    [InlineData("send", "--credential", "billing.chain", "error: --credential: billing.chain is about")]
    [InlineData("send", "--policy", "peer.principal ==", "error: policy: ")]
    [InlineData("listen", "--name", "Billing", "error: --name: 'Billing' is not a relay name")]
    public async Task Bad_arguments_exit_2_with_an_error_line(string subcommand, string option, string value, string error)
    {
        var command = subcommand == "send" ? AgentQuickstart.Send : AgentQuickstart.MalloryListen(AgentQuickstart.ReadmeRelayEndPoint);

        var result = (await quickstart.RunAsync(With(command, option, value))).Exited(2);

        Assert.StartsWith(error, result.Stderr, StringComparison.Ordinal);
        Assert.Equal(string.Empty, result.Stdout);
    }

    [Fact]
    public async Task Missing_options_a_missing_message_and_a_missing_passphrase_exit_2()
    {
        var missing = (await quickstart.Sandbox.RunAsync("agent", "send", "--identity", "alice", "--to", "billing")).Exited(2);
        Assert.Contains("error: Option '--relay' is required.", missing.Stderr, StringComparison.Ordinal);
        Assert.Contains("error: Required argument missing for command: 'send'.", missing.Stderr, StringComparison.Ordinal);
        Assert.EndsWith("Run 'securechannels agent send --help' for usage.", missing.Stderr.Trim(), StringComparison.Ordinal);

        var locked = (await quickstart.Sandbox.RunAsync(quickstart.Arguments(AgentQuickstart.Send), passphrase: null)).Exited(2);
        Assert.Equal("error: SECURECHANNELS_PASSPHRASE is not set: this command signs, and identity keys are encrypted under the passphrase in that environment variable.", locked.Stderr.Trim());
    }

    [Fact]
    public void The_readme_quickstart_shows_exactly_the_commands_these_tests_run()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryRoot(), "README.md"));
        var section = readme[readme.IndexOf("## Quickstart: two agents in two terminals", StringComparison.Ordinal)..];
        section = Continuation().Replace(section[..section.IndexOf("\n## ", 1, StringComparison.Ordinal)], " ");
        var missing = AgentQuickstart.ReadmeCommands
            .Select(c => "securechannels " + string.Join(' ', c.Select(ShellWord)))
            .Where(line => !section.Contains(line + "\n", StringComparison.Ordinal))
            .ToList();
        Assert.True(missing.Count == 0, "README.md's quickstart lacks:\n" + string.Join('\n', missing));
    }

    // The listener's lines about the first channel from PEER after line BEFORE, once that channel closed.
    private async Task<(string Number, string[] Lines)> ChannelAsync(string peer, int before)
    {
        var opened = await quickstart.Listener.WaitForLineAsync(l => l.Contains($" from peer {peer} ", StringComparison.Ordinal), before);
        var number = ChannelNumber().Match(opened).Groups["n"].Value;
        await quickstart.Listener.WaitForLineAsync(l => l.StartsWith($"channel {number} closed ", StringComparison.Ordinal), before);
        return (number, [.. quickstart.Listener.Lines.Skip(before).Where(l => l.StartsWith($"channel {number} ", StringComparison.Ordinal))]);
    }

    // The command with OPTION's value replaced, or with OPTION VALUE added (before a send's message).
    private static string[] With(string[] command, string option, string value)
    {
        var at = Array.IndexOf(command, option);
        if (at >= 0)
        {
            return [.. command[..(at + 1)], value, .. command[(at + 2)..]];
        }

        return command[1] == "send" ? [.. command[..^1], option, value, command[^1]] : [.. command, option, value];
    }

    // How the README writes an argument: single-quoted when the shell would split or interpret it.
    private static string ShellWord(string argument) =>
        argument.All(c => char.IsAsciiLetterOrDigit(c) || "-_.:=/@,".Contains(c, StringComparison.Ordinal)) ? argument : $"'{argument}'";

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "SecureChannels.sln")))
            {
                return directory.FullName;
            }
        }

        throw new DirectoryNotFoundException("No SecureChannels.sln above the test folder.");
    }

    [GeneratedRegex(@"^channel (?<n>\d+) ")]
    private static partial Regex ChannelNumber();

    [GeneratedRegex(@"[ \t]*\\\n[ \t]*")]
    private static partial Regex Continuation();
}

/// <summary>
/// The README quickstart, run once for the class: identities, credentials, a relay, and billing listening. Its commands
/// are the README's; the relay alone gets two more arguments (ports 0, so tests never collide), and agents are given
/// the relay's actual endpoint instead of 127.0.0.1:7300.
/// </summary>
public sealed class AgentQuickstart : IAsyncLifetime
{
    public const string ReadmeRelayEndPoint = "127.0.0.1:7300";

    public static readonly string[][] Setup =
    [
        ["identity", "create", "--name", "authority"],
        ["identity", "create", "--name", "relay"],
        ["identity", "create", "--name", "billing"],
        ["identity", "create", "--name", "alice"],
        ["identity", "export", "--name", "authority", "--out", "authority.identity"],
        ["identity", "export", "--name", "relay", "--out", "relay.identity"],
        ["credential", "issue", "--authority", "authority", "--subject", ".securechannels/billing.identity", "--principal", "system:billing", "--attr", "relay-name=billing", "--valid-for", "8h", "--out", "billing.chain"],
        ["credential", "issue", "--authority", "authority", "--subject", ".securechannels/alice.identity", "--principal", "user:alice", "--attr", "role=assistant", "--valid-for", "8h", "--out", "alice.chain"],
        ["identity", "create", "--name", "mallory"],
        ["credential", "issue", "--authority", "authority", "--subject", ".securechannels/mallory.identity", "--principal", "user:mallory", "--valid-for", "8h", "--out", "mallory.chain"],
    ];

    public static readonly string[] RelayRun = ["relay", "run", "--trust", "authority.identity"];

    public static readonly string[] Listen =
    [
        "agent", "listen", "--identity", "billing", "--credential", "billing.chain", "--trust", "authority.identity",
        "--relay", ReadmeRelayEndPoint, "--relay-id", "relay.identity", "--name", "billing", "--policy", "peer.principal == \"user:alice\"", "--reply", "ok",
    ];

    public static readonly string[] Send =
    [
        "agent", "send", "--identity", "alice", "--credential", "alice.chain", "--trust", "authority.identity",
        "--relay", ReadmeRelayEndPoint, "--relay-id", "relay.identity", "--to", "billing", "--wait-reply", "hello",
    ];

    public static readonly string[] MallorySend =
    [
        "agent", "send", "--identity", "mallory", "--credential", "mallory.chain", "--trust", "authority.identity",
        "--relay", ReadmeRelayEndPoint, "--relay-id", "relay.identity", "--to", "billing", "hello",
    ];

    public static IEnumerable<string[]> ReadmeCommands => [.. Setup, RelayRun, Listen, Send, MallorySend];

    internal CliSandbox Sandbox { get; } = new();

    internal RunningCli Listener { get; private set; } = null!;

    public string RelayEndPoint { get; private set; } = string.Empty;

    public string Relay { get; private set; } = string.Empty;

    public string Billing { get; private set; } = string.Empty;

    public string Alice { get; private set; } = string.Empty;

    public string Mallory { get; private set; } = string.Empty;

    public string BillingExpiry { get; private set; } = string.Empty;

    public string AliceExpiry { get; private set; } = string.Empty;

    private RunningCli RelayProcess { get; set; } = null!;

    /// <summary>Mallory listening under the default policy, without names, at <paramref name="relay"/>.</summary>
    public static string[] MalloryListen(string relay) =>
    [
        "agent", "listen", "--identity", "mallory", "--credential", "mallory.chain", "--trust", "authority.identity",
        "--relay", relay, "--relay-id", "relay.identity",
    ];

    /// <summary>A README command with this relay's endpoint.</summary>
    public string[] Arguments(string[] command) => [.. command.Select(a => a == ReadmeRelayEndPoint ? RelayEndPoint : a)];

    internal Task<CliResult> RunAsync(string[] command) => Sandbox.RunAsync(Arguments(command));

    public async Task InitializeAsync()
    {
        var results = new List<CliResult>();
        foreach (var command in Setup)
        {
            results.Add((await Sandbox.RunAsync(command)).Succeeded());
        }

        Relay = results[1].Field("identifier")!;
        Billing = results[2].Field("identifier")!;
        Alice = results[3].Field("identifier")!;
        Mallory = results[8].Field("identifier")!;
        BillingExpiry = results[6].Field("valid")!.Split(" to ")[1];
        AliceExpiry = results[7].Field("valid")!.Split(" to ")[1];

        RelayProcess = RunningCli.Start(Sandbox, [.. RelayRun, "--Relay:Endpoint=127.0.0.1:0", "--Relay:MetricsEndpoint=127.0.0.1:0"]);
        var listening = await RelayProcess.WaitForLineAsync(l => l.Contains($" {Relay} listening on ", StringComparison.Ordinal));
        RelayEndPoint = listening.Split(' ')[5];

        Listener = RunningCli.Start(Sandbox, Arguments(Listen));
        Assert.Equal(
            $"listening as {Billing} on relay {Relay} at {RelayEndPoint} (names: billing)",
            await Listener.WaitForLineAsync(l => l.StartsWith("listening as ", StringComparison.Ordinal)));
    }

    public async Task DisposeAsync()
    {
        if (Listener is not null)
        {
            await Listener.DisposeAsync();
        }

        if (RelayProcess is not null)
        {
            await RelayProcess.DisposeAsync();
        }

        Sandbox.Dispose();
    }
}

/// <summary>
/// A CLI process that keeps running (<c>relay run</c>, <c>agent listen</c>): its stdout lines are collected as they come
/// and waited for; SIGTERM stops it. Like <see cref="CliSandbox.RunAsync(string[], string?)"/>, it runs in the sandbox
/// with the passphrase set on the child only.
/// </summary>
internal sealed class RunningCli : IAsyncDisposable
{
    // A guard against a hung process, not a synchronisation device: every line awaited comes long before it.
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(60);

    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly Task<string> _stderr;
    private readonly Task _reading;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _ended;

    private RunningCli(Process process)
    {
        _process = process;
        _stderr = process.StandardError.ReadToEndAsync();
        _reading = ReadAsync();
    }

    /// <summary>Every stdout line so far.</summary>
    public string[] Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    public static RunningCli Start(CliSandbox sandbox, IEnumerable<string> arguments)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var start = new ProcessStartInfo(dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = sandbox.Directory,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "securechannels.dll"));
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["SECURECHANNELS_PASSPHRASE"] = CliSandbox.Passphrase;
        return new RunningCli(Process.Start(start) ?? throw new InvalidOperationException("Could not start the CLI."));
    }

    /// <summary>The first line from index <paramref name="after"/> on that <paramref name="match"/> accepts, once printed.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, int after = 0)
    {
        using var guard = new CancellationTokenSource(Guard);
        while (true)
        {
            Task changed;
            bool ended;
            lock (_lines)
            {
                if (_lines.Skip(after).FirstOrDefault(match) is { } line)
                {
                    return line;
                }

                ended = _ended;
                changed = _changed.Task;
            }

            if (ended)
            {
                throw new InvalidOperationException($"The process ended without the line. stdout: {string.Join('\n', Lines)}; stderr: {await _stderr}");
            }

            await changed.WaitAsync(guard.Token);
        }
    }

    /// <summary>Sends SIGTERM and waits for the exit.</summary>
    public async Task<(int ExitCode, string Stderr)> StopAsync()
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        return await WaitForExitAsync();
    }

    public async Task<(int ExitCode, string Stderr)> WaitForExitAsync()
    {
        using var guard = new CancellationTokenSource(Guard);
        await _process.WaitForExitAsync(guard.Token);
        await _reading;
        return (_process.ExitCode, await _stderr);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync();
        await _reading;
        await _stderr;
        _process.Dispose();
    }

    private async Task ReadAsync()
    {
        while (await _process.StandardOutput.ReadLineAsync() is { } line)
        {
            Changed(() => _lines.Add(line));
        }

        Changed(() => _ended = true);
    }

    private void Changed(Action change)
    {
        TaskCompletionSource changed;
        lock (_lines)
        {
            change();
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.SetResult();
    }
}
