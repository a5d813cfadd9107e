using System.Buffers.Binary;
using SecureChannels.Protocol.Channel;

namespace SecureChannels.Testing;

/// <summary>
/// Messages numbered 1.. (a 4-byte big-endian number, then a pattern that depends on it), streamed over a
/// channel: a receiver can tell a gap, a duplicate, a reordering or an altered message from the numbers alone.
/// </summary>
public static class NumberedMessages
{
    public static byte[] Create(int number, int size)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, sizeof(int));
        var message = new byte[size];
        BinaryPrimitives.WriteInt32BigEndian(message, number);
        for (var i = sizeof(int); i < size; i++)
        {
            message[i] = (byte)((i * 31) + number);
        }

        return message;
    }

    /// <summary>The message's number, or -1 when its body does not match it (altered).</summary>
    public static int Read(ReadOnlySpan<byte> message)
    {
        if (message.Length < sizeof(int))
        {
            return -1;
        }

        var number = BinaryPrimitives.ReadInt32BigEndian(message);
        for (var i = sizeof(int); i < message.Length; i++)
        {
            if (message[i] != (byte)((i * 31) + number))
            {
                return -1;
            }
        }

        return number;
    }

    /// <summary>
    /// Sends messages 1..<paramref name="count"/> (each of <paramref name="size"/> bytes) in order, stopping at the
    /// first send that fails; <paramref name="sizeOf"/>, when given, sizes each message by its number instead.
    /// </summary>
    public static async Task<SendOutcome> SendAsync(SecureChannel channel, int count, int size, Func<int, int>? sizeOf = null, Func<int, Task>? before = null)
    {
        ArgumentNullException.ThrowIfNull(channel);
        for (var number = 1; number <= count; number++)
        {
            try
            {
                if (before is not null)
                {
                    await before(number).ConfigureAwait(false);
                }

                await channel.SendAsync(Create(number, sizeOf?.Invoke(number) ?? size)).ConfigureAwait(false);
            }
            catch (SecureChannelException e)
            {
                return new SendOutcome(number - 1, e);
            }
        }

        return new SendOutcome(count, null);
    }

    /// <summary>Receives until the channel ends, recording every number in arrival order and how the channel ended.</summary>
    public static async Task<ReceiveOutcome> ReceiveAllAsync(SecureChannel channel, Action<int>? received = null)
    {
        ArgumentNullException.ThrowIfNull(channel);
        var numbers = new List<int>();
        while (true)
        {
            ChannelMessage? message;
            try
            {
                message = await channel.ReceiveAsync().ConfigureAwait(false);
            }
            catch (SecureChannelException e)
            {
                return new ReceiveOutcome(numbers, e);
            }

            if (message is null)
            {
                return new ReceiveOutcome(numbers, null);
            }

            using (message)
            {
                var number = Read(message.Payload.Span);
                numbers.Add(number);
                received?.Invoke(number);
            }
        }
    }

    /// <summary>How many messages the send loop handed to the channel (1..Sent), and the failure that stopped it, if any.</summary>
    public sealed record SendOutcome(int Sent, SecureChannelException? Failure);

    /// <summary>The numbers received, in order (-1 for an altered message), and the failure that ended the channel (null: a graceful end).</summary>
    public sealed record ReceiveOutcome(IReadOnlyList<int> Numbers, SecureChannelException? Failure)
    {
        /// <summary>True when the numbers are exactly 1..n: no gap, duplicate, reordering or alteration.</summary>
        public bool IsPrefix => Numbers.Select((n, i) => n == i + 1).All(ok => ok);

        public override string ToString() =>
            $"received [{string.Join(",", Numbers.Count <= 20 ? Numbers : [.. Numbers.Take(10), -999, .. Numbers.TakeLast(10)])}] then {(Failure is null ? "a graceful end" : $"{Failure.Code} (from peer: {Failure.FromPeer}): {Failure.Message}")}";
    }
}
