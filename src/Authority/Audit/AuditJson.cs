using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using SecureChannels.Authority.Storage;

namespace SecureChannels.Authority.Audit;

/// <summary>
/// Audit records as JSON lines, so a log can be exported and verified offline: one object per line with
/// <c>sequence</c> (number), <c>at</c> (ISO 8601 UTC to the millisecond, e.g. <c>2026-03-01T09:00:00.123Z</c>),
/// <c>actor</c>, <c>principal</c>, <c>action</c>, <c>target</c>, <c>reason</c> (strings), <c>previous_hash</c>,
/// <c>hash</c> and <c>signature</c> (lowercase hex). Reading is strict: every field exactly once, nothing else.
/// </summary>
/// <remarks>
/// Every character outside ASCII is written as a <c>\uXXXX</c> escape (and control characters, quotes and
/// backslashes are escaped as JSON requires): an export is plain ASCII, so a line shown in a terminal cannot
/// hide its text behind bidirectional overrides or look-alike characters, and texts still read back exactly.
/// </remarks>
public static class AuditJson
{
    /// <summary>The longest line <see cref="ReadAsync"/> accepts, in bytes; longer lines are refused rather than buffered without end.</summary>
    public const int MaxLineBytes = 4 * 1024 * 1024;

    private const string TimeFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";
    private const int SignatureLength = 64;
    private const int ReadChunkBytes = 64 * 1024;
    private const int WriteFlushBytes = 64 * 1024;

    private static readonly JsonWriterOptions WriterOptions = new() { Indented = false };

    // Depth 2 is enough for one flat object: anything nested is refused by the reader before it is walked.
    private static readonly JsonReaderOptions ReaderOptions = new() { CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false, MaxDepth = 2 };

    /// <summary>One record as one JSON line, without the line end.</summary>
    /// <exception cref="ArgumentException">A text of the record is not well-formed UTF-16 (no sealed record has one).</exception>
    public static string Format(AuditRecord record)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            Write(writer, record);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Writes <paramref name="records"/> to <paramref name="output"/>, one JSON line each (every line ends with <c>\n</c>).</summary>
    /// <exception cref="ArgumentException">A text of a record is not well-formed UTF-16 (no sealed record has one).</exception>
    public static async Task WriteAsync(IAsyncEnumerable<AuditRecord> records, Stream output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(output);
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new Utf8JsonWriter(buffer, WriterOptions);
        await using (writer.ConfigureAwait(false))
        {
            await foreach (var record in records.WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                // Each line is a complete JSON document of its own; Reset lets one writer start the next.
                writer.Reset(buffer);
                Write(writer, record);
                writer.Flush();
                buffer.Write("\n"u8);
                if (buffer.WrittenCount >= WriteFlushBytes)
                {
                    await output.WriteAsync(buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
                    buffer.ResetWrittenCount();
                }
            }
        }

        await output.WriteAsync(buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Exports the whole log of <paramref name="transaction"/> to <paramref name="output"/>, read a page at a time.</summary>
    /// <exception cref="AuthorityStoreException">The store failed.</exception>
    public static Task ExportAsync(IAuthorityTransaction transaction, Stream output, int pageSize = AuditChain.DefaultPageSize, CancellationToken cancellationToken = default) =>
        WriteAsync(AuditChain.ReadAllAsync(transaction, pageSize, cancellationToken), output, cancellationToken);

    /// <summary>
    /// Reads JSON lines back into records, as they come, for <see cref="AuditChain.VerifyAsync(IAsyncEnumerable{AuditRecord}, Protocol.Identity.VerifiedIdentity, AuditHead?, CancellationToken)"/>.
    /// Lines may end with <c>\n</c> or <c>\r\n</c>; blank lines and a UTF-8 byte order mark are skipped.
    /// </summary>
    /// <exception cref="AuditFormatException">A line is not a record, or is longer than <see cref="MaxLineBytes"/>.</exception>
    public static async IAsyncEnumerable<AuditRecord> ReadAsync(Stream input, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(input);
        var chunk = new byte[ReadChunkBytes];
        var line = new ArrayBufferWriter<byte>();
        var parsed = new List<AuditRecord>();
        var lineNumber = 0L;
        int read;
        while ((read = await input.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            // Records are parsed a chunk at a time and yielded after (spans of the chunk cannot live across a
            // yield); a bad line is reported only after the good lines before it were handed out, as if streamed.
            AuditFormatException? error = null;
            try
            {
                lineNumber = SplitLines(chunk.AsSpan(0, read), line, parsed, lineNumber);
            }
            catch (AuditFormatException e)
            {
                error = e;
            }

            foreach (var record in parsed)
            {
                yield return record;
            }

            parsed.Clear();
            if (error is not null)
            {
                throw error;
            }
        }

        if (line.WrittenCount > 0)
        {
            ParseInto(parsed, line.WrittenSpan, lineNumber + 1);
            foreach (var record in parsed)
            {
                yield return record;
            }
        }
    }

    /// <summary>Parses one JSON line (without its line end) into a record.</summary>
    /// <param name="utf8Line">The line, UTF-8.</param>
    /// <param name="lineNumber">Its 1-based number, for the error.</param>
    /// <exception cref="AuditFormatException">The line is not a record.</exception>
    public static AuditRecord ParseLine(ReadOnlySpan<byte> utf8Line, long lineNumber)
    {
        try
        {
            return Parse(utf8Line, lineNumber);
        }
        catch (JsonException e)
        {
            // The reader's position says where the syntax broke without quoting the content.
            throw new AuditFormatException(lineNumber, string.Create(CultureInfo.InvariantCulture, $"not valid JSON (at byte {e.BytePositionInLine ?? 0})."), e);
        }
        catch (InvalidOperationException e)
        {
            // GetString and friends throw this for text that is not valid UTF-8 or escapes a lone surrogate.
            throw new AuditFormatException(lineNumber, "a string is not valid UTF-8 text (invalid bytes or a lone surrogate).", e);
        }
    }

    /// <summary>Parses one JSON line (without its line end) into a record.</summary>
    /// <exception cref="AuditFormatException">The line is not a record.</exception>
    public static AuditRecord ParseLine(string line, long lineNumber)
    {
        ArgumentNullException.ThrowIfNull(line);
        return ParseLine(Encoding.UTF8.GetBytes(line), lineNumber);
    }

    private static void Write(Utf8JsonWriter writer, AuditRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        writer.WriteStartObject();
        writer.WriteNumber("sequence"u8, record.Sequence);
        writer.WriteString("at"u8, record.At.UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture));
        WriteText(writer, "actor"u8, record.Actor, record.Sequence);
        WriteText(writer, "principal"u8, record.Principal, record.Sequence);
        WriteText(writer, "action"u8, record.Action, record.Sequence);
        WriteText(writer, "target"u8, record.Target, record.Sequence);
        WriteText(writer, "reason"u8, record.Reason, record.Sequence);
        writer.WriteString("previous_hash"u8, Convert.ToHexStringLower(record.PreviousHash));
        writer.WriteString("hash"u8, Convert.ToHexStringLower(record.Hash));
        writer.WriteString("signature"u8, Convert.ToHexStringLower(record.Signature));
        writer.WriteEndObject();
    }

    private static void WriteText(Utf8JsonWriter writer, ReadOnlySpan<byte> name, string value, long sequence)
    {
        // The writer would throw its own, vaguer error; a lone surrogate has no UTF-8 form to export anyway.
        if (!AuditChain.IsWellFormed(value))
        {
            throw new ArgumentException($"Record {sequence} has a text with a lone surrogate, which has no JSON (UTF-8) form.", nameof(value));
        }

        writer.WriteString(name, value);
    }

    /// <summary>Parses every line <paramref name="chunk"/> completes into <paramref name="parsed"/>, keeps the unfinished rest in <paramref name="line"/>, and returns the number of the last completed line.</summary>
    private static long SplitLines(ReadOnlySpan<byte> chunk, ArrayBufferWriter<byte> line, List<AuditRecord> parsed, long lineNumber)
    {
        int end;
        while ((end = chunk.IndexOf((byte)'\n')) >= 0)
        {
            Append(line, chunk[..end], lineNumber + 1);
            lineNumber++;
            ParseInto(parsed, line.WrittenSpan, lineNumber);
            line.ResetWrittenCount();
            chunk = chunk[(end + 1)..];
        }

        Append(line, chunk, lineNumber + 1);
        return lineNumber;
    }

    private static void Append(ArrayBufferWriter<byte> line, ReadOnlySpan<byte> bytes, long lineNumber)
    {
        if (line.WrittenCount + bytes.Length > MaxLineBytes)
        {
            throw new AuditFormatException(lineNumber, string.Create(CultureInfo.InvariantCulture, $"the line is longer than {MaxLineBytes} bytes."));
        }

        line.Write(bytes);
    }

    private static void ParseInto(List<AuditRecord> parsed, ReadOnlySpan<byte> line, long lineNumber)
    {
        if (lineNumber == 1 && line.StartsWith("\uFEFF"u8))
        {
            line = line[3..];
        }

        if (line.EndsWith("\r"u8))
        {
            line = line[..^1];
        }

        // Blank lines carry nothing to verify; an editor's trailing empty line should not fail the file.
        if (line.Trim(" \t"u8).IsEmpty)
        {
            return;
        }

        parsed.Add(ParseLine(line, lineNumber));
    }

    private static AuditRecord Parse(ReadOnlySpan<byte> utf8Line, long lineNumber)
    {
        var reader = new Utf8JsonReader(utf8Line, ReaderOptions);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            throw new AuditFormatException(lineNumber, "the line is not a JSON object.");
        }

        long? sequence = null;
        DateTimeOffset? at = null;
        string? actor = null, principal = null, action = null, target = null, reason = null;
        byte[]? previousHash = null, hash = null, signature = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var field = FieldOf(ref reader);
            if (field is null)
            {
                throw new AuditFormatException(lineNumber, "the object has a field that is not part of an audit record.");
            }

            var seen = field switch
            {
                "sequence" => sequence is not null,
                "at" => at is not null,
                "actor" => actor is not null,
                "principal" => principal is not null,
                "action" => action is not null,
                "target" => target is not null,
                "reason" => reason is not null,
                "previous_hash" => previousHash is not null,
                "hash" => hash is not null,
                _ => signature is not null,
            };

            // JSON tools disagree on which of two equal keys wins; a record must mean one thing to all of them.
            if (seen)
            {
                throw new AuditFormatException(lineNumber, $"the field {field} appears twice.");
            }

            reader.Read();
            switch (field)
            {
                case "sequence":
                    sequence = reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var value) && value >= 1
                        ? value
                        : throw new AuditFormatException(lineNumber, "sequence is not a whole number of at least 1.");
                    break;
                case "at":
                    at = ReadTime(ref reader, lineNumber);
                    break;
                case "actor":
                    actor = ReadText(ref reader, field, lineNumber);
                    break;
                case "principal":
                    principal = ReadText(ref reader, field, lineNumber);
                    break;
                case "action":
                    action = ReadText(ref reader, field, lineNumber);
                    break;
                case "target":
                    target = ReadText(ref reader, field, lineNumber);
                    break;
                case "reason":
                    reason = ReadText(ref reader, field, lineNumber);
                    break;
                case "previous_hash":
                    previousHash = ReadHex(ref reader, field, AuditChain.HashLength, lineNumber);
                    break;
                case "hash":
                    hash = ReadHex(ref reader, field, AuditChain.HashLength, lineNumber);
                    break;
                default:
                    signature = ReadHex(ref reader, field, SignatureLength, lineNumber);
                    break;
            }
        }

        if (reader.TokenType != JsonTokenType.EndObject)
        {
            throw new AuditFormatException(lineNumber, "the object is not closed.");
        }

        // With a single document allowed, any further token makes Read throw; whitespace is all that may follow.
        if (reader.Read())
        {
            throw new AuditFormatException(lineNumber, "something follows the object.");
        }

        var missing = sequence is null ? "sequence"
            : at is null ? "at"
            : actor is null ? "actor"
            : principal is null ? "principal"
            : action is null ? "action"
            : target is null ? "target"
            : reason is null ? "reason"
            : previousHash is null ? "previous_hash"
            : hash is null ? "hash"
            : signature is null ? "signature"
            : null;
        if (missing is not null)
        {
            throw new AuditFormatException(lineNumber, $"the field {missing} is missing.");
        }

        return new AuditRecord(sequence!.Value, at!.Value, actor!, principal!, action!, target!, reason!, previousHash!, hash!, signature!);
    }

    private static string? FieldOf(ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("sequence"u8) ? "sequence"
        : reader.ValueTextEquals("at"u8) ? "at"
        : reader.ValueTextEquals("actor"u8) ? "actor"
        : reader.ValueTextEquals("principal"u8) ? "principal"
        : reader.ValueTextEquals("action"u8) ? "action"
        : reader.ValueTextEquals("target"u8) ? "target"
        : reader.ValueTextEquals("reason"u8) ? "reason"
        : reader.ValueTextEquals("previous_hash"u8) ? "previous_hash"
        : reader.ValueTextEquals("hash"u8) ? "hash"
        : reader.ValueTextEquals("signature"u8) ? "signature"
        : null;

    private static string ReadText(ref Utf8JsonReader reader, string field, long lineNumber) =>
        reader.TokenType == JsonTokenType.String
            ? reader.GetString()!
            : throw new AuditFormatException(lineNumber, $"{field} is not a string.");

    private static DateTimeOffset ReadTime(ref Utf8JsonReader reader, long lineNumber)
    {
        // One spelling only (the one written), so a time has exactly one text form and reads back to the same instant.
        if (reader.TokenType == JsonTokenType.String
            && DateTime.TryParseExact(reader.GetString(), TimeFormat, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var utc))
        {
            return new DateTimeOffset(DateTime.SpecifyKind(utc, DateTimeKind.Utc));
        }

        throw new AuditFormatException(lineNumber, "at is not a UTC time written as yyyy-MM-ddTHH:mm:ss.fffZ.");
    }

    private static byte[] ReadHex(ref Utf8JsonReader reader, string field, int length, long lineNumber)
    {
        if (reader.TokenType == JsonTokenType.String && !reader.ValueIsEscaped && reader.ValueSpan.Length == length * 2)
        {
            var bytes = new byte[length];
            if (Convert.FromHexString(Encoding.ASCII.GetString(reader.ValueSpan), bytes, out _, out var written) == OperationStatus.Done && written == length)
            {
                return bytes;
            }
        }

        throw new AuditFormatException(lineNumber, string.Create(CultureInfo.InvariantCulture, $"{field} is not {length} bytes in hex."));
    }
}
