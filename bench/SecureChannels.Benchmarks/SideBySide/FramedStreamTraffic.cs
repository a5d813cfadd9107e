using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>
/// Messages over a byte stream (TLS, or bare TCP) framed as the baselines of the channel frame them: a 4-byte big-endian
/// length prefix and the message, written with one WriteAsync; the reader reads the prefix, then the whole message.
/// </summary>
internal static class FramedStreamTraffic
{
    private const int PrefixLength = 4;

    /// <summary>The prefix and <paramref name="payload"/> in one buffer, as the sender writes them.</summary>
    public static byte[] Frame(ReadOnlySpan<byte> payload)
    {
        var frame = new byte[PrefixLength + payload.Length];
        BinaryPrimitives.WriteInt32BigEndian(frame, payload.Length);
        payload.CopyTo(frame.AsSpan(PrefixLength));
        return frame;
    }

    /// <summary>
    /// The sender writes <paramref name="frame"/> <paramref name="count"/> times (pipelined) while a receiver task reads
    /// them; returns the time from the first write to the last message read, after checking every prefix.
    /// </summary>
    public static async Task<TimeSpan> SendReceiveAsync(Stream sender, Stream receiver, byte[] frame, long count)
    {
        var length = frame.Length - PrefixLength;
        var started = Stopwatch.GetTimestamp();
        var receiving = Task.Run(async () =>
        {
            var prefix = new byte[PrefixLength];
            var message = new byte[length];
            for (long i = 0; i < count; i++)
            {
                await ReadAsync(receiver, prefix, message).ConfigureAwait(false);
            }
        });
        for (long i = 0; i < count; i++)
        {
            await sender.WriteAsync(frame).ConfigureAwait(false);
        }

        await receiving.WaitAsync(RelayPeers.Guard).ConfigureAwait(false);
        return Stopwatch.GetElapsedTime(started);
    }

    /// <summary>Sends a few distinct random messages of <paramref name="size"/> bytes and checks each arrives intact: a broken baseline fails here, before anything is timed.</summary>
    public static async Task CheckDeliveryAsync(Stream sender, Stream receiver, int size)
    {
        var prefix = new byte[PrefixLength];
        var message = new byte[size];
        for (var i = 0; i < 3; i++)
        {
            var payload = RandomNumberGenerator.GetBytes(size);
            var write = sender.WriteAsync(Frame(payload)).AsTask();
            await ReadAsync(receiver, prefix, message).WaitAsync(RelayPeers.Guard).ConfigureAwait(false);
            await write.ConfigureAwait(false);
            if (!message.AsSpan().SequenceEqual(payload))
            {
                throw new InvalidOperationException($"A {size}-byte message did not arrive as sent.");
            }
        }
    }

    /// <summary>Reads one framed message into <paramref name="message"/>, whose length it must have.</summary>
    private static async Task ReadAsync(Stream receiver, byte[] prefix, byte[] message)
    {
        await receiver.ReadExactlyAsync(prefix).ConfigureAwait(false);
        var length = BinaryPrimitives.ReadInt32BigEndian(prefix);
        if (length != message.Length)
        {
            throw new InvalidOperationException($"A frame announces {length} bytes instead of {message.Length}.");
        }

        await receiver.ReadExactlyAsync(message).ConfigureAwait(false);
    }
}
