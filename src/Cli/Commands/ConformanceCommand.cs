using System.CommandLine;
using System.Globalization;
using System.Net;
using SecureChannels.Conformance;
using SecureChannels.Protocol.Noise;

namespace SecureChannels.Cli.Commands;

/// <summary><c>securechannels conformance</c>: the Noise vector runner and the interop peer.</summary>
internal static class ConformanceCommand
{
    public static Command Create() => new("conformance", "Prove Noise conformance: run test vectors, or act as a peer for another implementation.")
    {
        CreateVectors(),
        CreatePeer(),
    };

    private static Command CreateVectors()
    {
        var files = new Argument<FileInfo[]>("files") { Arity = ArgumentArity.OneOrMore, Description = "Vector files (cacophony, snow or noise-c format)." };
        var command = new Command("vectors", "Run Noise test vector files; prints one line per failing or unsupported vector and a summary.") { files };
        command.SetAction(parse =>
        {
            int passed = 0, failed = 0, unsupported = 0;
            foreach (var file in parse.GetValue(files) ?? [])
            {
                IEnumerable<NoiseVector> vectors;
                try
                {
                    vectors = NoiseVector.ReadFile(file.FullName);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
                {
                    Console.Error.WriteLine($"{file.Name}: cannot read vectors: {e.Message}");
                    failed++;
                    continue;
                }

                foreach (var result in vectors.Select(vector => NoiseVectorRunner.Run(vector)))
                {
                    switch (result.Outcome)
                    {
                        case VectorOutcome.Passed:
                            passed++;
                            break;
                        case VectorOutcome.Unsupported:
                            unsupported++;
                            Console.WriteLine($"unsupported {file.Name} {result.ProtocolName}: {result.Reason}");
                            break;
                        default:
                            failed++;
                            Console.WriteLine($"FAILED {file.Name} {result.ProtocolName}: {result.Reason}");
                            break;
                    }
                }
            }

            Console.WriteLine($"{passed} passed, {failed} failed, {unsupported} unsupported");
            return failed == 0 ? 0 : 1;
        });
        return command;
    }

    private static Command CreatePeer()
    {
        var role = new Option<string>("--role") { Required = true, Description = "initiator or responder." };
        role.AcceptOnlyFromAmong("initiator", "responder");
        var protocol = new Option<string>("--protocol") { Required = true, Description = "Full Noise protocol name, e.g. Noise_XX_25519_ChaChaPoly_BLAKE2b." };
        var listen = new Option<string?>("--listen") { Description = "Responder: HOST:PORT to listen on (port 0 picks one; printed as 'listening HOST:PORT')." };
        var connect = new Option<string?>("--connect") { Description = "Initiator: HOST:PORT to connect to." };
        var localStatic = new Option<string?>("--static") { Description = "Local static private key, hex (generated when the pattern needs one and none is given)." };
        var remoteStatic = new Option<string?>("--remote-static") { Description = "Remote static public key, hex: the pre-message key where the pattern pre-shares it, otherwise checked on arrival." };
        var prologue = new Option<string?>("--prologue") { Description = "Prologue, hex." };
        var psk = new Option<string[]>("--psk") { Description = "Pre-shared key, hex; repeat in modifier order." };
        var count = new Option<int>("--count") { DefaultValueFactory = _ => 3, Description = "Transport messages the initiator sends." };
        var size = new Option<int>("--size") { DefaultValueFactory = _ => 64, Description = "Bytes per transport message." };

        var command = new Command("peer", "Run one Noise handshake and echo exchange over TCP (2-byte big-endian length before each message).")
        {
            role, protocol, listen, connect, localStatic, remoteStatic, prologue, psk, count, size,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                var isInitiator = parse.GetValue(role) == "initiator";
                var endPoint = isInitiator
                    ? parse.GetValue(connect) ?? throw new PeerException("The initiator needs --connect HOST:PORT.")
                    : parse.GetValue(listen) ?? throw new PeerException("The responder needs --listen HOST:PORT.");
                var options = new NoisePeerOptions
                {
                    Role = isInitiator ? PeerRole.Initiator : PeerRole.Responder,
                    Protocol = parse.GetValue(protocol)!,
                    EndPoint = ParseEndPoint(endPoint),
                    LocalStatic = Hex(parse.GetValue(localStatic), "--static"),
                    RemoteStatic = Hex(parse.GetValue(remoteStatic), "--remote-static"),
                    Prologue = Hex(parse.GetValue(prologue), "--prologue") ?? [],
                    Psks = [.. (parse.GetValue(psk) ?? []).Select(p => Hex(p, "--psk")!)],
                    Count = parse.GetValue(count),
                    Size = parse.GetValue(size),
                };
                await NoisePeer.RunAsync(options, Console.Out, TimeProvider.System, cancellationToken).ConfigureAwait(false);
                return 0;
            }
            catch (Exception e) when (e is NoiseException or PeerException or IOException or System.Net.Sockets.SocketException or ArgumentException)
            {
                await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
                return 1;
            }
        });
        return command;
    }

    private static IPEndPoint ParseEndPoint(string text)
    {
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > IPEndPoint.MaxPort)
        {
            throw new PeerException($"'{text}' is not HOST:PORT.");
        }

        var host = text[..colon].Trim('[', ']');
        var address = host == "localhost" ? IPAddress.Loopback : IPAddress.TryParse(host, out var parsed) ? parsed : null;
        return new IPEndPoint(address ?? throw new PeerException($"'{host}' is not an IP address or localhost."), port);
    }

    private static byte[]? Hex(string? text, string option)
    {
        if (text is null)
        {
            return null;
        }

        try
        {
            return Convert.FromHexString(text);
        }
        catch (FormatException)
        {
            throw new PeerException($"{option} is not hex.");
        }
    }
}
