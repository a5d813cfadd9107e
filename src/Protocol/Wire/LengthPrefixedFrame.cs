using System.Buffers;
using System.Buffers.Binary;

namespace SecureChannels.Protocol.Wire;

/// <summary>
/// The 2-byte framing that carries Noise messages over a byte stream: a big-endian length, then that many
/// bytes. Two bytes are enough because no Noise message exceeds 65535 bytes.
/// </summary>
/// <remarks>
/// <code>
///  0       2                       2+length
///  +-------+-----------------------+
///  |length |  Noise message        |
///  +-------+-----------------------+
/// </code>
/// </remarks>
public static class LengthPrefixedFrame
{
    /// <summary>Bytes of the length prefix.</summary>
    public const int HeaderLength = 2;

    /// <summary>Largest body: the Noise message limit, which the 16-bit length can express exactly.</summary>
    public const int MaxBodyLength = ushort.MaxValue;

    /// <summary>
    /// Takes one whole frame from the front of <paramref name="buffer"/>, if it holds one: on success
    /// <paramref name="body"/> is the frame's body and <paramref name="buffer"/> starts after it; otherwise
    /// nothing changes and the caller should wait for more bytes.
    /// </summary>
    public static bool TryRead(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> body)
    {
        body = default;
        if (buffer.Length < HeaderLength)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[HeaderLength];
        buffer.Slice(0, HeaderLength).CopyTo(header);
        var length = BinaryPrimitives.ReadUInt16BigEndian(header);
        if (buffer.Length < HeaderLength + length)
        {
            return false;
        }

        body = buffer.Slice(HeaderLength, length);
        buffer = buffer.Slice(HeaderLength + length);
        return true;
    }

    /// <summary>Writes the header for a body of <paramref name="bodyLength"/> bytes.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The body is longer than <see cref="MaxBodyLength"/>.</exception>
    public static void WriteHeader(Span<byte> destination, int bodyLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bodyLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bodyLength, MaxBodyLength);
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)bodyLength);
    }
}
