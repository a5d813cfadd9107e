using System.Collections.Concurrent;
using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using SecureChannels.Client;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Cli.Commands;

/// <summary>
/// <c>securechannels agent</c>: an agent on a relay, from the identity directory and files. <c>listen</c> keeps a hop
/// up and prints each channel and message; <c>send</c> opens one channel, sends, optionally reads replies, and closes.
/// Both print on stdout one line per event, as their help states: other tools parse these lines. Errors go to stderr as
/// <c>error: ...</c>, and so does the listener's log (hops lost and re-established, channels refused).
/// </summary>
internal static class AgentCommand
{
    private const string DefaultPolicy = "peer.chain_length >= 1";
    private const int DefaultTimeoutSeconds = 30;

    private const string PeerFormat = "peer IDENTIFIER principal PRINCIPAL hops N expires TIME attributes ATTRIBUTES";

    public static Command Create() => new("agent", "Run an agent on a relay: listen for channels, or send messages over one. The identity must exist in --dir (securechannels identity create); its key is opened with SECURECHANNELS_PASSPHRASE.")
    {
        CreateListen(),
        CreateSend(),
    };

    /// <summary>The options both subcommands share, read the same way by both.</summary>
    private sealed record Common(
        Option<string> Identity,
        Option<string> Directory,
        Option<string[]> Credentials,
        Option<string[]> Trust,
        Option<string[]> Revocations,
        Option<string> Relay,
        Option<string> RelayId,
        Option<string> Policy)
    {
        public static Common Create(string policyDescription) => new(
            IdentityStore.NameOption("--identity", "The agent's identity in --dir."),
            IdentityStore.DirectoryOption(),
            new Option<string[]>("--credential") { Required = true, HelpName = "FILE", Description = "A .chain file about this identity, presented to the relay and to peers. Repeatable." },
            CliTrust.TrustOption(),
            CliTrust.RevocationsOption(),
            new Option<string>("--relay") { Required = true, HelpName = "HOST:PORT", Description = "The relay's hop endpoint: an IP address and port, as 'relay run' prints it (127.0.0.1:7300, [::1]:7300)." },
            new Option<string>("--relay-id") { Required = true, HelpName = "IDENTIFIER|FILE", Description = "The relay's identifier (I + 64 hex digits) or its identity history file; the hop is refused unless the relay proves it." },
            new Option<string>("--policy") { HelpName = "TEXT", Description = policyDescription, DefaultValueFactory = _ => DefaultPolicy });

        public void AddTo(Command command)
        {
            command.Options.Add(Identity);
            command.Options.Add(Directory);
            command.Options.Add(Credentials);
            command.Options.Add(Trust);
            command.Options.Add(Revocations);
            command.Options.Add(Relay);
            command.Options.Add(RelayId);
            command.Options.Add(Policy);
        }

        public RelayEndpoint ReadRelay(ParseResult parse) =>
            new(EndPoint(parse.GetValue(Relay)!), CliParsing.IdentifierOrHistory(parse.GetValue(RelayId)!, "--relay-id"));

        /// <summary>
        /// The agent's settings from the options, with its identity opened (one key derivation; dispose it after the
        /// agent). Everything that can be checked before the network is, as a usage error.
        /// </summary>
        public async Task<(OpenIdentity Identity, AgentClientOptions Options)> LoadAsync(
            ParseResult parse, RelayEndpoint relay, bool listen, IReadOnlyList<string> names, ILoggerFactory loggers, CancellationToken cancellationToken, Action<ChannelEvent>? events = null)
        {
            var passphrase = IdentityStore.RequirePassphrase();
            var policy = AccessPolicy.Parse(parse.GetValue(Policy)!);
            var (anchors, revocations) = await CliTrust.LoadAsync(parse.GetValue(Trust) ?? [], parse.GetValue(Revocations) ?? []).ConfigureAwait(false);
            var paths = parse.GetValue(Credentials) ?? [];
            var chains = paths.Select(CliFiles.ReadChain).ToList();
            var name = parse.GetValue(Identity)!;
            var identity = await new IdentityStore(parse.GetValue(Directory)!).OpenAsync(name, passphrase, cancellationToken).ConfigureAwait(false);

            // The relay would refuse the hop, again at every reconnect; the mistake is the command line's.
            if (chains.FindIndex(c => c.Leaf.Credential.Subject != identity.Agent.Identifier) is var foreign and >= 0)
            {
                await identity.DisposeAsync().ConfigureAwait(false);
                throw CliException.Usage($"--credential: {paths[foreign]} is about {chains[foreign].Leaf.Credential.Subject}, not identity '{name}' ({identity.Agent.Identifier}).");
            }

            return (identity, new AgentClientOptions
            {
                Identity = identity.Agent,
                Anchors = anchors,
                Credentials = chains,
                Revocations = revocations,
                Policy = policy,
                Relays = [relay],
                Names = names,
                Listen = listen,
                LoggerFactory = loggers,
                Events = events,
            });
        }
    }

    private static Command CreateListen()
    {
        var common = Common.Create("Who may open a channel to this agent (docs/protocol.md §7); the default admits anyone with a credential from a --trust authority.");
        var names = new Option<string[]>("--name") { HelpName = "NAME", Description = "A name to register at the relay besides the identifier (1-63 of a-z 0-9 - ., starting with a letter or digit); a --credential must carry relay-name=NAME. Repeatable." };
        var reply = new Option<string?>("--reply") { HelpName = "TEXT", Description = "Answer every message with TEXT." };
        var command = new Command(
            "listen",
            "Keep a hop to the relay, registered at this agent's identifier and --name(s), and accept channels the --policy allows, until SIGINT or SIGTERM (exit 0). "
            + "Prints on stdout, one line each: 'listening as IDENTIFIER on relay IDENTIFIER at HOST:PORT (names: NAME, ... | none)' once the hop is up; "
            + $"'channel N from {PeerFormat}' for each channel accepted (N counts from 1); 'channel N message TEXT' for each message, as UTF-8 with a backslash shown as \\\\, newline, return and tab as \\n, \\r, \\t, and other control or format characters as \\uXXXX; "
            + "'channel N closed CODE' when the peer closes (CODE: Normal, or a reason of docs/protocol.md §8.6 and ': why'). "
            + "'refused peer IDENTIFIER principal PRINCIPAL: CODE' for a channel the policy or the handshake refused (the opener learns the code; IDENTIFIER is 'unidentified' and PRINCIPAL 'unknown' when the handshake failed before they were proven). A hop lost later is re-established in the background (logged on stderr). "
            + ExitCodes.Describe("the relay could not be joined at start (unreachable, the hop refused, a --name not granted)"));
        common.AddTo(command);
        command.Options.Add(names);
        command.Options.Add(reply);
        command.SetAction((parse, cancellationToken) => CliOutput.RunAsync(async () =>
        {
            var relay = common.ReadRelay(parse);
            var registered = (parse.GetValue(names) ?? []).Distinct(StringComparer.Ordinal).ToList();
            if (registered.FirstOrDefault(n => !RelayAddress.IsValidName(n)) is { } bad)
            {
                throw CliException.Usage($"--name: '{bad}' is not a relay name (1-63 of a-z 0-9 - ., starting with a letter or digit).");
            }

            if (registered.Count > RelayLimits.MaxNamesInHello)
            {
                throw CliException.Usage($"--name: at most {RelayLimits.MaxNamesInHello} names.");
            }

            var answer = parse.GetValue(reply) is { } text ? Encoding.UTF8.GetBytes(text) : null;

            // System.CommandLine 2.0.0 leaves SIGINT and SIGTERM to the runtime, which kills the process at once
            // (its ProcessTerminationTimeout is null, dotnet/command-line-api#2739); a listener stops on them instead,
            // telling its peers (GoingAway), and exits 0.
            using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            void Stop(PosixSignalContext signal)
            {
                signal.Cancel = true;
                _ = stopping.CancelAsync();
            }

            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);

            using var loggers = ListenerLoggers();
            var (identity, options) = await common.LoadAsync(parse, relay, listen: true, registered, loggers, stopping.Token, PrintRefusal).ConfigureAwait(false);
            await using (identity.ConfigureAwait(false))
            {
                var agent = new AgentClient(options);
                await using (agent.ConfigureAwait(false))
                {
                    // StartAsync throws what kept the first hop from coming up (and the client would go on retrying in
                    // the background): a listener just started by hand says so at once rather than waiting silently.
                    try
                    {
                        await agent.StartAsync(stopping.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                    {
                        return ExitCodes.Ok;
                    }
                    catch (Exception e) when (Failure($"joining relay {relay.Identifier} at {relay.EndPoint}", e) is { } failure)
                    {
                        throw failure;
                    }

                    await Console.Out.WriteLineAsync($"listening as {agent.Identifier} on relay {relay.Identifier} at {relay.EndPoint} (names: {(registered.Count == 0 ? "none" : string.Join(", ", registered))})").ConfigureAwait(false);
                    await ServeAsync(agent, answer, stopping.Token).ConfigureAwait(false);
                }
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CreateSend()
    {
        var common = Common.Create("What the peer must satisfy (docs/protocol.md §7); the default asks for a credential from a --trust authority.");
        var to = new Option<string>("--to") { Required = true, HelpName = "ADDRESS", Description = "Where to open the channel: an identifier, a name, or name@relay (docs/protocol.md §9.3)." };
        var waitReply = new Option<bool>("--wait-reply") { Description = "After each message, wait for one message back and print it." };
        var timeout = new Option<int>("--timeout") { HelpName = "SECONDS", Description = "Give up after this long, all steps together: joining the relay, the handshake, the replies, the close.", DefaultValueFactory = _ => DefaultTimeoutSeconds };
        timeout.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < 1 or > 86400)
            {
                result.AddError("--timeout must be from 1 to 86400 seconds.");
            }
        });
        var messages = new Argument<string[]>("MESSAGE") { Arity = ArgumentArity.OneOrMore, Description = "A message to send, as UTF-8; each argument is one message, in order." };
        var command = new Command(
            "send",
            "Open a channel to --to through the relay, send each MESSAGE, close gracefully. "
            + $"Prints on stdout, one line each: 'channel to ADDRESS: {PeerFormat}' once the peer is verified; with --wait-reply, 'reply TEXT' for each reply (escaped as 'agent listen' does); 'closed Normal' at the end. "
            + "A failure prints 'error: STEP: ...' on stderr with the reason: a channel code of docs/protocol.md §8.6 as 'NAME (N)' (AccessDenied (3) when the peer's policy refuses), or a relay code of §9.7 as 'relay NAME (N)' (relay Unreachable (1) for an address nobody holds). "
            + ExitCodes.Describe("the relay, the address or the peer refused, the channel failed, or --timeout passed"));
        common.AddTo(command);
        command.Options.Add(to);
        command.Options.Add(waitReply);
        command.Options.Add(timeout);
        command.Arguments.Add(messages);
        command.SetAction((parse, cancellationToken) => CliOutput.RunAsync(async () =>
        {
            var relay = common.ReadRelay(parse);
            var address = parse.GetValue(to)!;
            if (!RelayAddress.TryParse(address, out _))
            {
                throw CliException.Usage($"--to: '{address}' is not an address: an identifier, a name (1-63 of a-z 0-9 - .), or name@relay.");
            }

            var seconds = parse.GetValue(timeout);

            // No client log: every failure that matters to a one-shot send ends it, and is reported as its error.
            var (identity, options) = await common.LoadAsync(parse, relay, listen: false, [], NullLoggerFactory.Instance, cancellationToken).ConfigureAwait(false);
            await using (identity.ConfigureAwait(false))
            {
                var agent = new AgentClient(options);
                await using (agent.ConfigureAwait(false))
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(seconds), TimeProvider.System);
                    using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
                    var step = $"joining relay {relay.Identifier} at {relay.EndPoint}";
                    try
                    {
                        await agent.StartAsync(deadline.Token).ConfigureAwait(false);
                        step = $"opening a channel to {address}";
                        await SendAsync(agent, address, parse.GetValue(messages)!, parse.GetValue(waitReply), s => step = s, deadline.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (deadline.IsCancellationRequested)
                    {
                        throw new CliException(ExitCodes.Failed, cancellationToken.IsCancellationRequested ? $"interrupted {step}." : $"timed out after {seconds} s {step}.");
                    }
                    catch (Exception e) when (Failure(step, e) is { } failure)
                    {
                        throw failure;
                    }
                }
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static async Task SendAsync(AgentClient agent, string address, string[] messages, bool waitReply, Action<string> step, CancellationToken cancellationToken)
    {
        var channel = await agent.OpenChannelAsync(address, cancellationToken).ConfigureAwait(false);
        await using (channel.ConfigureAwait(false))
        {
            await Console.Out.WriteLineAsync($"channel to {address}: {PeerText(channel.Peer)}").ConfigureAwait(false);
            foreach (var message in messages)
            {
                step("sending");
                await channel.SendAsync(Encoding.UTF8.GetBytes(message), cancellationToken).ConfigureAwait(false);
                if (waitReply)
                {
                    step("waiting for a reply");
                    using var reply = await channel.ReceiveAsync(cancellationToken).ConfigureAwait(false);
                    if (reply is null)
                    {
                        throw new CliException(ExitCodes.Failed, "waiting for a reply: the peer closed the channel without replying.");
                    }

                    await Console.Out.WriteLineAsync($"reply {Printable(reply.Payload.Span)}").ConfigureAwait(false);
                }
            }

            step("closing the channel");
            var closing = channel.CloseAsync(cancellationToken);

            // Messages nobody waits for may still arrive; the receive queue is bounded, and the peer's close is behind them.
            while (true)
            {
                using var unread = await channel.ReceiveAsync(cancellationToken).ConfigureAwait(false);
                if (unread is null)
                {
                    break;
                }
            }

            await closing.ConfigureAwait(false);
            var end = await channel.Completion.ConfigureAwait(false);
            await Console.Out.WriteLineAsync($"closed {end.Code}").ConfigureAwait(false);
        }
    }

    // Every accepted channel is served on its own; on SIGINT/SIGTERM each ends (the peer hears GoingAway) before exit.
    private static async Task ServeAsync(AgentClient agent, byte[]? answer, CancellationToken stopping)
    {
        var serving = new ConcurrentDictionary<Task, byte>();
        var count = 0;
        try
        {
            await foreach (var channel in agent.AcceptChannelsAsync(stopping).ConfigureAwait(false))
            {
                var number = ++count;
                await Console.Out.WriteLineAsync($"channel {number} from {PeerText(channel.Peer)}").ConfigureAwait(false);
                var task = ServeChannelAsync(channel, number, answer, stopping);
                serving[task] = 0;

                // A listener may run for months: it holds only the channels still open.
                _ = task.ContinueWith(t => serving.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // SIGINT or SIGTERM: no more channels; those open end as their loops see the same token.
        }

        await Task.WhenAll(serving.Keys).ConfigureAwait(false);
    }

    private static async Task ServeChannelAsync(AgentChannel channel, int number, byte[]? answer, CancellationToken stopping)
    {
        await using (channel.ConfigureAwait(false))
        {
            try
            {
                while (true)
                {
                    using var message = await channel.ReceiveAsync(stopping).ConfigureAwait(false);
                    if (message is null)
                    {
                        await Console.Out.WriteLineAsync($"channel {number} closed {ChannelErrorCode.Normal}").ConfigureAwait(false);
                        return;
                    }

                    await Console.Out.WriteLineAsync($"channel {number} message {Printable(message.Payload.Span)}").ConfigureAwait(false);
                    if (answer is not null)
                    {
                        await channel.SendAsync(answer, stopping).ConfigureAwait(false);
                    }
                }
            }
            catch (SecureChannelException e)
            {
                await Console.Out.WriteLineAsync($"channel {number} closed {e.Code}: {Printable(e.Message)}").ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                // Stopping: disposing the channel tells the peer.
            }
        }
    }

    /// <summary>What the network, the relay or the peer refused, as exit 1 with its code; null for anything else.</summary>
    private static CliException? Failure(string step, Exception e) => e switch
    {
        SecureChannelException channel => new(ExitCodes.Failed, $"{step}: {channel.Code} ({(int)channel.Code}){(channel.FromPeer ? " from the peer" : string.Empty)}: {channel.Message}"),
        RelayException relay => new(ExitCodes.Failed, $"{step}: relay {relay.Code} ({(int)relay.Code}): {relay.Message}"),
        SocketException or IOException => new(ExitCodes.Failed, $"{step}: {e.Message}"),
        _ => null,
    };

    /// <summary>The verified peer on one line; the attributes last, as their text has spaces.</summary>
    // A channel the policy (or the handshake) refused never reaches the accept loop; its audit event is how it is seen.
    private static void PrintRefusal(ChannelEvent audit)
    {
        if (audit.Kind == ChannelEventKind.Denied)
        {
            Console.Out.WriteLine($"refused peer {audit.PeerIdentifier?.ToString() ?? "unidentified"} principal {(audit.Principal is { } principal ? Printable(principal) : "unknown")}: {audit.Code}");
        }
    }

    private static string PeerText(VerifiedPeer peer) =>
        $"peer {peer.Identifier} principal {Printable(peer.Principal.ToString())} hops {peer.ChainLength} expires {CliOutput.Time(peer.NotAfter)} attributes {Printable(CliOutput.AttributesText(peer.Attributes))}";

    private static IPEndPoint EndPoint(string text) =>
        IPEndPoint.TryParse(text, out var endPoint) && endPoint.Port != 0
            ? endPoint
            : throw CliException.Usage($"--relay: '{text}' is not an IP address and port (e.g. 127.0.0.1:7300).");

    // A listener runs unattended, so the client's own account goes to stderr (stdout stays one line per event): a hop
    // lost and re-established (warnings), and each incoming channel refused, with the peer and why (information).
    private static ILoggerFactory ListenerLoggers() => LoggerFactory.Create(builder =>
    {
        builder.AddConsole(options => options.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.AddSimpleConsole(options =>
        {
            options.SingleLine = true;
            options.ColorBehavior = LoggerColorBehavior.Disabled;
        });
        builder.SetMinimumLevel(LogLevel.Warning);
        builder.AddFilter(typeof(AgentClient).FullName, LogLevel.Information);
    });

    private static string Printable(ReadOnlySpan<byte> utf8) => Printable(Encoding.UTF8.GetString(utf8));

    // A peer chooses this text: escaped, it can neither pose as a line of ours nor steer the terminal (escape
    // sequences, bidirectional overrides). The backslash is escaped too, so the escaping is unambiguous.
    private static string Printable(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            switch (c)
            {
                case '\\':
                    builder.Append(@"\\");
                    break;
                case '\n':
                    builder.Append(@"\n");
                    break;
                case '\r':
                    builder.Append(@"\r");
                    break;
                case '\t':
                    builder.Append(@"\t");
                    break;
                default:
                    if (char.IsControl(c) || CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator)
                    {
                        builder.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
                    }
                    else
                    {
                        builder.Append(c);
                    }

                    break;
            }
        }

        return builder.ToString();
    }
}
