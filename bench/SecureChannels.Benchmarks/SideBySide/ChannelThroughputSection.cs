using System.Security.Cryptography;
using SecureChannels.Protocol.Noise.Crypto;

using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>
/// Section 3: one connection on loopback TCP, one sender and one receiver, pipelined: our channel against TLS 1.3 and
/// against bare TCP with the same framing, for bulk (64 KiB, 1 MiB) and small (64 B, 1 KiB) messages.
/// </summary>
internal static class ChannelThroughputSection
{
    public const string Title = "3. One connection on loopback TCP: throughput and message rate";

    private const int BulkFrom = 65536;

    // The plaintext of one channel record: the 65,535-byte Noise message less its 16-byte tag.
    private const int ChannelRecordBody = 65519;

    private static readonly int[] Sizes = [64, 1024, 65536, 1048576];

    private static readonly byte[] Key = RandomNumberGenerator.GetBytes(32);

    private static readonly Goal BulkOverTls = Goal.AtLeastTimes(1.5);
    private static readonly Goal SmallOverTls = Goal.AtLeastTimes(2);
    private static readonly Goal BulkOverRaw = Goal.AtLeastTimes(0.7);

    public static async Task RunAsync(CompareReport report, SideBySideSettings settings)
    {
        using var peers = await ChannelPeers.CreateAsync().ConfigureAwait(false);
        using var tls = TlsPeers.Create();
        var (initiator, responder) = await LoopbackConnections.ChannelAsync(peers).ConfigureAwait(false);
        await using (initiator.ConfigureAwait(false))
        await using (responder.ConfigureAwait(false))
        {
            var (client, server) = await LoopbackConnections.TlsAsync(tls).ConfigureAwait(false);
            await using (client.ConfigureAwait(false))
            await using (server.ConfigureAwait(false))
            {
                var (rawClient, rawServer) = await LoopbackConnections.RawAsync().ConfigureAwait(false);
                await using (rawClient.ConfigureAwait(false))
                await using (rawServer.ConfigureAwait(false))
                {
                    var table = new MarkdownTable("size", "SecureChannel MB/s", "msgs/s", "TLS 1.3 MB/s", "msgs/s", "raw TCP MB/s", "msgs/s", "ours / TLS", "goal", "verdict", "ours / raw", "goal", "verdict", "AEAD, 1 core MB/s", "ours / AEAD");
                    foreach (var size in Sizes)
                    {
                        var payload = RandomNumberGenerator.GetBytes(size);
                        var frame = FramedStreamTraffic.Frame(payload);
                        await ChannelTraffic.CheckDeliveryAsync(initiator, responder, size).ConfigureAwait(false);
                        await FramedStreamTraffic.CheckDeliveryAsync(client, server, size).ConfigureAwait(false);
                        await FramedStreamTraffic.CheckDeliveryAsync(rawClient, rawServer, size).ConfigureAwait(false);
                        var measured = await AlternatingRounds.MeasureAsync(settings,
                        [
                            new("SecureChannel", count => ChannelTraffic.SendReceiveAsync(initiator, responder, payload, count)),
                            new("TLS", count => FramedStreamTraffic.SendReceiveAsync(client, server, frame, count)),
                            new("raw TCP", count => FramedStreamTraffic.SendReceiveAsync(rawClient, rawServer, frame, count)),
                            Contender.Synchronous("AEAD", count => SealAndOpen(payload, count)),
                        ], firstCount: 16).ConfigureAwait(false);
                        AddRow(report, table, size, measured[0].Rate, measured[1].Rate, measured[2].Rate, measured[3].Rate);
                    }

                    report.Table(table);
                    report.Note(
                        Invariant($"MB/s = 10^6 message bytes per second (framing and cryptography not counted). TLS negotiated {client.NegotiatedCipherSuite} (OpenSSL's default choice)."),
                        "One connection of each, opened once; per size, a sender awaits each send in turn (pipelined) while a receiver task reads. SecureChannel:",
                        "SendAsync / ReceiveAsync and Dispose of the ChannelMessage, over " + LoopbackTcp.PipeDescription + ".",
                        "TLS 1.3 (SslStream, mutual certificates, TlsPeers) and raw TCP (NetworkStream, no cryptography): a 4-byte length prefix and the",
                        "message in one WriteAsync; the reader reads the prefix, then the message. Each size first checks that a few random messages arrive",
                        "intact on all three; every timed run checks the byte count (channel) or every length prefix (TLS, raw).",
                        Invariant($"Goals: ours / TLS {BulkOverTls.Text} for bulk ({FormatSize(BulkFrom)} and up), {SmallOverTls.Text} for small messages; ours / raw TCP {BulkOverRaw.Text} for bulk."),
                        "AEAD, 1 core: the channel's cipher alone (AeadCipher.ChaChaPoly: libsodium below 4 KiB records, OpenSSL from there up) sealing and",
                        "opening each message in records of at most 65,519 bytes, on one thread: the cryptographic work of one message on both sides. A",
                        "pipelined transfer runs the two halves on two cores, so it could at best approach twice this rate, less whatever copying and",
                        "system calls the cores also do.");
                }
            }
        }
    }

    private static void AddRow(CompareReport report, MarkdownTable table, int size, double ours, double theirs, double raw, double aead)
    {
        var bulk = size >= BulkFrom;
        var overTls = ours / theirs;
        var overRaw = ours / raw;
        var tlsGoal = bulk ? BulkOverTls : SmallOverTls;
        var shownTls = Invariant($"{overTls:F2}x");
        var shownRaw = Invariant($"{overRaw:F2}x");
        table.Row(
            FormatSize(size),
            MegabytesPerSecond(ours, size),
            Invariant($"{ours:N0}"),
            MegabytesPerSecond(theirs, size),
            Invariant($"{theirs:N0}"),
            MegabytesPerSecond(raw, size),
            Invariant($"{raw:N0}"),
            shownTls,
            tlsGoal.Text,
            report.Judge(Invariant($"Loopback TCP, {FormatSize(size)} messages: ours / TLS"), tlsGoal, overTls, shownTls),
            shownRaw,
            bulk ? BulkOverRaw.Text : "",
            bulk ? report.Judge(Invariant($"Loopback TCP, {FormatSize(size)} messages: ours / raw TCP"), BulkOverRaw, overRaw, shownRaw) : "",
            MegabytesPerSecond(aead, size),
            Invariant($"{ours / aead:F2}x"));
    }

    // Seals and opens `count` messages of the payload's size as the channel cuts them into records, in place.
    private static void SealAndOpen(byte[] payload, long count)
    {
        const int Record = ChannelRecordBody;
        var buffer = new byte[Math.Min(payload.Length, Record) + 16];
        using var sealing = AeadCipher.ChaChaPoly.CreateKey(Key);
        using var opening = AeadCipher.ChaChaPoly.CreateKey(Key);
        ulong nonce = 0;
        for (long i = 0; i < count; i++)
        {
            for (var offset = 0; offset < payload.Length; offset += Record)
            {
                var length = Math.Min(Record, payload.Length - offset);
                payload.AsSpan(offset, length).CopyTo(buffer);
                sealing.Encrypt(nonce, default, buffer.AsSpan(0, length), buffer);
                if (!opening.TryDecrypt(nonce, default, buffer.AsSpan(0, length + 16), buffer))
                {
                    throw new InvalidOperationException("The AEAD did not open what it sealed.");
                }

                nonce++;
            }
        }
    }

    private static string MegabytesPerSecond(double messagesPerSecond, int size) => Invariant($"{messagesPerSecond * size / 1e6:F1}");
}
