using System.Data;
using System.Data.Common;
using System.Text;

namespace SecureChannels.Authority.Storage;

/// <summary>
/// What differs between the databases under the one transaction implementation (<see cref="DbAuthorityTransaction"/>):
/// how text is bound and read back, and what a provider's failure means.
/// </summary>
internal abstract class StoreDialect
{
    /// <summary>The database's name, for messages.</summary>
    public abstract string Name { get; }

    /// <summary>Binds <paramref name="value"/> (already checked by <see cref="StoreText.Validate"/>); null binds SQL NULL.</summary>
    public abstract void AddText(DbCommand command, string name, string? value);

    /// <summary>Reads a text column bound by <see cref="AddText"/>.</summary>
    public abstract string GetText(DbDataReader reader, int ordinal);

    /// <summary>What a provider failure means, and a detail for the message that holds no secret.</summary>
    public abstract (AuthorityStoreErrorKind Kind, string Detail) Classify(DbException exception);

    /// <summary>
    /// Called when a rollback failed, so the connection may still hold a transaction: keeps it from being handed out
    /// again by a pool.
    /// </summary>
    public virtual void Discard(DbConnection connection)
    {
    }

    /// <summary>The store exception for a provider failure during <paramref name="operation"/>.</summary>
    public AuthorityStoreException Translate(string operation, DbException exception)
    {
        var (kind, detail) = Classify(exception);
        var what = kind switch
        {
            AuthorityStoreErrorKind.Unavailable => "the database is unavailable",
            AuthorityStoreErrorKind.Conflict => "a uniqueness rule was broken",
            _ => "the database refused",
        };
        return new AuthorityStoreException(kind, $"{Name} authority store: {operation} failed: {what} ({detail}).", exception);
    }

    /// <summary>Adds a byte array parameter; null binds SQL NULL.</summary>
    public static void AddBytes(DbCommand command, string name, byte[]? value) =>
        Add(command, name, DbType.Binary, value);

    /// <summary>Adds a 64-bit integer parameter; null binds SQL NULL.</summary>
    public static void AddInt64(DbCommand command, string name, long? value) =>
        Add(command, name, DbType.Int64, value);

    /// <summary>Adds a 32-bit integer parameter.</summary>
    public static void AddInt32(DbCommand command, string name, int value) =>
        Add(command, name, DbType.Int32, value);

    /// <summary>Adds a time as UTC unix milliseconds; null binds SQL NULL.</summary>
    public static void AddTime(DbCommand command, string name, DateTimeOffset? value) =>
        Add(command, name, DbType.Int64, value?.ToUnixTimeMilliseconds());

    /// <summary>Reads a time stored by <see cref="AddTime"/>, with offset zero.</summary>
    public static DateTimeOffset GetTime(DbDataReader reader, int ordinal) =>
        DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(ordinal));

    private static void Add(DbCommand command, string name, DbType type, object? value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.DbType = type;
        parameter.Value = value ?? DBNull.Value;
        command.Parameters.Add(parameter);
    }
}

/// <summary>The one rule for text in both stores: well-formed UTF-16 in, UTF-8 bytes stored, the same string out.</summary>
internal static class StoreText
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Refuses a string that UTF-8 cannot carry (a lone surrogate), so nothing is silently replaced by U+FFFD.</summary>
    /// <exception cref="ArgumentException">The string holds a lone surrogate.</exception>
    public static void Validate(string? value, string paramName, string field)
    {
        if (value is null)
        {
            return;
        }

        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (!char.IsSurrogate(c))
            {
                continue;
            }

            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                i++;
                continue;
            }

            // The value itself stays out of the message: it may be anything a client sent.
            throw new ArgumentException($"{field} holds a lone surrogate at index {i}; the authority store keeps text as UTF-8.", paramName);
        }
    }

    /// <summary>UTF-8 of a validated string.</summary>
    public static byte[] Encode(string value) => StrictUtf8.GetBytes(value);

    /// <summary>The string stored as UTF-8; bytes that are not UTF-8 mean the table was written by something else.</summary>
    /// <exception cref="AuthorityStoreException">The bytes are not UTF-8.</exception>
    public static string Decode(string store, byte[] utf8)
    {
        try
        {
            return StrictUtf8.GetString(utf8);
        }
        catch (DecoderFallbackException e)
        {
            throw new AuthorityStoreException(AuthorityStoreErrorKind.Failed, $"{store} authority store: a stored text column is not UTF-8.", e);
        }
    }
}
