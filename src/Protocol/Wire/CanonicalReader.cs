using System.Text;
using MessagePack;

namespace SecureChannels.Protocol.Wire;

/// <summary>
/// Reads the canonical MessagePack subset that <see cref="CanonicalWriter"/> writes, turning every decoding
/// failure into a <see cref="WireFormatException"/> that names the structure and field. Canonical form is
/// enforced by <see cref="CanonicalEncoding.Decode"/>: whatever is read is written again and must give back
/// the same bytes, so no second encoding of a value is ever accepted.
/// </summary>
public ref struct CanonicalReader
{
    private readonly string _structure;
    private MessagePackReader _reader;

    /// <summary>Reads <paramref name="input"/>, an encoding of <paramref name="structure"/> (named in errors).</summary>
    public CanonicalReader(ReadOnlyMemory<byte> input, string structure)
    {
        _reader = new MessagePackReader(input);
        _structure = structure;
    }

    /// <summary>True when every byte has been read.</summary>
    public readonly bool End => _reader.End;

    /// <summary>How many bytes were read so far (where a structure followed by other bytes ends).</summary>
    public readonly long Consumed => _reader.Consumed;

    /// <summary>Reads an array header and checks its element count is within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public int ReadArray(string field, int min, int max)
    {
        var count = Guard(field, static (ref MessagePackReader r) => r.ReadArrayHeader());
        return CheckCount(field, count, min, max);
    }

    /// <summary>Reads nil (returns null) or an array header with exactly <paramref name="count"/> elements.</summary>
    public int? ReadArrayOrNil(string field, int count)
    {
        if (Guard(field, static (ref MessagePackReader r) => r.TryReadNil()))
        {
            return null;
        }

        return ReadArray(field, count, count);
    }

    /// <summary>Reads nil if it is next (returning true); otherwise reads nothing and returns false.</summary>
    public bool TryReadNil(string field) => Guard(field, static (ref MessagePackReader r) => r.TryReadNil());

    /// <summary>Reads a map header and checks its entry count is within [0, <paramref name="max"/>].</summary>
    public int ReadMap(string field, int max)
    {
        var count = Guard(field, static (ref MessagePackReader r) => r.ReadMapHeader());
        return CheckCount(field, count, 0, max);
    }

    /// <summary>Reads an unsigned integer.</summary>
    public ulong ReadUnsigned(string field) => Guard(field, static (ref MessagePackReader r) => r.ReadUInt64());

    /// <summary>Reads a version number and refuses any other than <paramref name="expected"/>.</summary>
    public void ReadVersion(ulong expected)
    {
        var version = ReadUnsigned("version");
        if (version != expected)
        {
            throw new WireFormatException(WireErrorKind.UnsupportedVersion, $"{_structure}: version {version} is not supported (expected {expected}).");
        }
    }

    /// <summary>Reads a byte string of exactly <paramref name="length"/> bytes.</summary>
    public byte[] ReadBytes(string field, int length) => ReadBytes(field, length, length);

    /// <summary>Reads a byte string of <paramref name="min"/> to <paramref name="max"/> bytes.</summary>
    public byte[] ReadBytes(string field, int min, int max)
    {
        var sequence = Guard(field, static (ref MessagePackReader r) => r.ReadBytes());
        if (sequence is not { } bytes)
        {
            throw Malformed(field, "is nil");
        }

        if (bytes.Length < min || bytes.Length > max)
        {
            throw new WireFormatException(bytes.Length > max ? WireErrorKind.TooLarge : WireErrorKind.Malformed, $"{_structure}: {field} has {bytes.Length} bytes; expected {(min == max ? $"{min}" : $"{min} to {max}")}.");
        }

        return System.Buffers.BuffersExtensions.ToArray(bytes);
    }

    /// <summary>Reads a byte string, or nil for an absent optional value.</summary>
    public byte[]? ReadBytesOrNil(string field, int length)
    {
        if (Guard(field, static (ref MessagePackReader r) => r.TryReadNil()))
        {
            return null;
        }

        return ReadBytes(field, length);
    }

    /// <summary>Reads nil (returns null) or a byte string of <paramref name="min"/> to <paramref name="max"/> bytes.</summary>
    public byte[]? ReadBytesOrNilOfLength(string field, int min, int max)
    {
        if (Guard(field, static (ref MessagePackReader r) => r.TryReadNil()))
        {
            return null;
        }

        return ReadBytes(field, min, max);
    }

    /// <summary>Reads a UTF-8 string of at most <paramref name="maxBytes"/> bytes.</summary>
    public string ReadText(string field, int maxBytes)
    {
        var sequence = Guard(field, static (ref MessagePackReader r) => r.ReadStringSequence());
        if (sequence is not { } bytes)
        {
            throw Malformed(field, "is nil");
        }

        if (bytes.Length > maxBytes)
        {
            throw new WireFormatException(WireErrorKind.TooLarge, $"{_structure}: {field} has {bytes.Length} bytes; the limit is {maxBytes}.");
        }

        try
        {
            return StrictUtf8.GetString(System.Buffers.BuffersExtensions.ToArray(bytes));
        }
        catch (DecoderFallbackException e)
        {
            throw new WireFormatException(WireErrorKind.Malformed, $"{_structure}: {field} is not valid UTF-8.", e);
        }
    }

    /// <summary>Reads one encoded value whole, as raw bytes (a nested structure decoded separately).</summary>
    public byte[] ReadRawValue(string field)
    {
        var raw = Guard(field, static (ref MessagePackReader r) => r.ReadRaw());
        return System.Buffers.BuffersExtensions.ToArray(raw);
    }

    /// <summary>Throws unless every byte was read.</summary>
    public readonly void EnsureEnd()
    {
        if (!_reader.End)
        {
            throw new WireFormatException(WireErrorKind.TrailingBytes, $"{_structure}: bytes follow the end of the structure.");
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private delegate T ReadFunc<T>(ref MessagePackReader reader);

    private T Guard<T>(string field, ReadFunc<T> read)
    {
        try
        {
            return read(ref _reader);
        }
        catch (EndOfStreamException e)
        {
            throw new WireFormatException(WireErrorKind.Truncated, $"{_structure}: the input ends inside {field}.", e);
        }
        catch (MessagePackSerializationException e)
        {
            throw new WireFormatException(WireErrorKind.Malformed, $"{_structure}: {field} is not of the expected type.", e);
        }
        catch (OverflowException e)
        {
            throw new WireFormatException(WireErrorKind.Malformed, $"{_structure}: {field} is out of range.", e);
        }
        catch (ArgumentOutOfRangeException e)
        {
            // A length prefix claiming more than the input (or more than 2 GiB) lands here in MessagePack.
            throw new WireFormatException(WireErrorKind.Truncated, $"{_structure}: {field} claims more bytes than the input holds.", e);
        }
    }

    private readonly int CheckCount(string field, int count, int min, int max)
    {
        if (count > max)
        {
            throw new WireFormatException(WireErrorKind.TooLarge, $"{_structure}: {field} has {count} elements; the limit is {max}.");
        }

        if (count < min)
        {
            throw Malformed(field, $"has {count} elements; at least {min} are required");
        }

        return count;
    }

    private readonly WireFormatException Malformed(string field, string what) =>
        new(WireErrorKind.Malformed, $"{_structure}: {field} {what}.");
}

/// <summary>Decoding that accepts only the canonical encoding of a value.</summary>
public static class CanonicalEncoding
{
    /// <summary>
    /// Decodes <paramref name="input"/> with <paramref name="read"/>, then re-encodes the result with
    /// <paramref name="write"/> and requires the very same bytes: a value has one encoding, so what was signed
    /// is exactly what is verified, and two parties never disagree on a hash.
    /// </summary>
    /// <exception cref="WireFormatException">The input is malformed, too large, trails bytes or is not canonical.</exception>
    public static T Decode<T>(ReadOnlyMemory<byte> input, string structure, int maxLength, DecodeFunc<T> read, Func<T, byte[]> write)
    {
        ArgumentNullException.ThrowIfNull(read);
        ArgumentNullException.ThrowIfNull(write);
        if (input.Length > maxLength)
        {
            throw new WireFormatException(WireErrorKind.TooLarge, $"{structure}: {input.Length} bytes exceed the {maxLength}-byte limit.");
        }

        var reader = new CanonicalReader(input, structure);
        var value = read(ref reader);
        reader.EnsureEnd();
        if (!input.Span.SequenceEqual(write(value)))
        {
            throw new WireFormatException(WireErrorKind.NonCanonical, $"{structure}: the encoding is valid but not canonical.");
        }

        return value;
    }

    /// <summary>Reads one value of type <typeparamref name="T"/>.</summary>
    public delegate T DecodeFunc<T>(ref CanonicalReader reader);
}
