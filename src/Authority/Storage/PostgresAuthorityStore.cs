using System.Data;
using System.Data.Common;
using System.Net.Sockets;
using Npgsql;
using NpgsqlTypes;

namespace SecureChannels.Authority.Storage;

/// <summary>
/// The <see cref="IAuthorityStore"/> for several authority instances sharing one PostgreSQL database.
/// </summary>
/// <remarks>
/// <para>
/// A write transaction runs at READ COMMITTED and takes the transaction-scoped advisory lock
/// <see cref="WriterLockKey"/> right after BEGIN, so writers from every instance on the database run one at a time; the
/// lock goes with the commit or rollback, and with the connection if the process dies. READ COMMITTED matters: each
/// statement after the lock sees everything the previous writer committed, whereas a REPEATABLE READ snapshot would be
/// taken by the lock statement itself, before that writer's commit, and hide it. A read transaction runs at
/// REPEATABLE READ, one consistent snapshot without locks. A writer waits for the lock at most the connection's
/// command timeout (Npgsql's default is 30 s), then fails with <see cref="AuthorityStoreErrorKind.Unavailable"/>.
/// </para>
/// <para>
/// Text columns are <c>bytea</c> holding UTF-8, because PostgreSQL's <c>text</c> cannot hold NUL and orders by the
/// database's collation; as bytes, every string round-trips and sorts by code point, the same as in the SQLite store.
/// The tables live in the connection's default schema (its <c>search_path</c>).
/// </para>
/// </remarks>
public sealed class PostgresAuthorityStore : IAuthorityStore
{
    /// <summary>The advisory lock every write transaction holds: "SCAUTHWR" in ASCII.</summary>
    public const long WriterLockKey = 0x5343_4155_5448_5752;

    /// <summary>The advisory lock schema creation holds, so concurrent <c>CREATE TABLE IF NOT EXISTS</c> never race: "SCAUTHSC".</summary>
    public const long SchemaLockKey = 0x5343_4155_5448_5343;

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS tickets (
            id bytea NOT NULL PRIMARY KEY,
            secret_hash bytea NOT NULL,
            principal bytea NOT NULL,
            attributes bytea NOT NULL,
            max_delegation_depth integer NOT NULL,
            credential_lifetime_seconds bigint NOT NULL,
            expires_at bigint NOT NULL,
            created_by bytea NOT NULL,
            created_at bigint NOT NULL,
            used_by bytea,
            used_at bigint
        );
        CREATE TABLE IF NOT EXISTS credentials (
            id bytea NOT NULL PRIMARY KEY,
            parent_id bytea,
            issuer bytea NOT NULL,
            subject bytea NOT NULL,
            principal bytea NOT NULL,
            attributes bytea NOT NULL,
            not_before bigint NOT NULL,
            not_after bigint NOT NULL,
            chain bytea NOT NULL,
            recorded_at bigint NOT NULL
        );
        CREATE INDEX IF NOT EXISTS credentials_parent_id ON credentials (parent_id);
        CREATE INDEX IF NOT EXISTS credentials_subject ON credentials (subject);
        CREATE INDEX IF NOT EXISTS credentials_principal ON credentials (principal);
        CREATE TABLE IF NOT EXISTS documents (
            kind bytea NOT NULL,
            resource bytea NOT NULL,
            version bigint NOT NULL,
            encoded bytea NOT NULL,
            published_at bigint NOT NULL,
            PRIMARY KEY (kind, resource, version)
        );
        CREATE TABLE IF NOT EXISTS audit (
            sequence bigint NOT NULL PRIMARY KEY,
            at bigint NOT NULL,
            actor bytea NOT NULL,
            principal bytea NOT NULL,
            action bytea NOT NULL,
            target bytea NOT NULL,
            reason bytea NOT NULL,
            previous_hash bytea NOT NULL,
            hash bytea NOT NULL,
            signature bytea NOT NULL
        );
        """;

    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;
    private bool _disposed;

    /// <summary>A store on the database a connection string names; the store owns the data source it builds from it.</summary>
    /// <param name="connectionString">An Npgsql connection string.</param>
    /// <exception cref="ArgumentException">The connection string is empty or malformed.</exception>
    public PostgresAuthorityStore(string connectionString)
        : this(NpgsqlDataSource.Create(RequireConnectionString(connectionString)), ownsDataSource: true)
    {
    }

    /// <summary>A store on <paramref name="dataSource"/>, which stays the caller's to dispose.</summary>
    public PostgresAuthorityStore(NpgsqlDataSource dataSource)
        : this(dataSource ?? throw new ArgumentNullException(nameof(dataSource)), ownsDataSource: false)
    {
    }

    private PostgresAuthorityStore(NpgsqlDataSource dataSource, bool ownsDataSource)
    {
        _dataSource = dataSource;
        _ownsDataSource = ownsDataSource;
    }

    /// <inheritdoc />
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using (transaction.ConfigureAwait(false))
                {
                    await LockAsync(connection, transaction, SchemaLockKey, cancellationToken).ConfigureAwait(false);
                    var command = new NpgsqlCommand(Schema, connection, transaction);
                    await using (command.ConfigureAwait(false))
                    {
                        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }

                    await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (NpgsqlException e)
        {
            throw Dialect.Instance.Translate("create the schema", e);
        }
    }

    /// <inheritdoc />
    public async Task<IAuthorityTransaction> BeginAsync(bool write, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        NpgsqlConnection? connection = null;
        NpgsqlTransaction? transaction = null;
        var begun = false;
        try
        {
            connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            transaction = await connection
                .BeginTransactionAsync(write ? IsolationLevel.ReadCommitted : IsolationLevel.RepeatableRead, cancellationToken)
                .ConfigureAwait(false);
            if (write)
            {
                await LockAsync(connection, transaction, WriterLockKey, cancellationToken).ConfigureAwait(false);
            }

            var begunTransaction = new DbAuthorityTransaction(Dialect.Instance, connection, transaction, write, heldWriterLock: null);
            begun = true;
            return begunTransaction;
        }
        catch (NpgsqlException e)
        {
            throw Dialect.Instance.Translate(write ? "begin a write transaction" : "begin a read transaction", e);
        }
        finally
        {
            if (!begun)
            {
                // Closing the connection ends the transaction and with it the advisory lock, if it was taken.
                if (transaction is not null)
                {
                    await DisposeQuietlyAsync(transaction).ConfigureAwait(false);
                }

                if (connection is not null)
                {
                    await connection.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>Disposes the data source when the store built it from a connection string.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_ownsDataSource)
        {
            await _dataSource.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static string RequireConnectionString(string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        return connectionString;
    }

    private static async Task LockAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long key, CancellationToken cancellationToken)
    {
        var command = new NpgsqlCommand("SELECT pg_advisory_xact_lock(@key)", connection, transaction);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<long>("key", NpgsqlDbType.Bigint) { TypedValue = key });
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task DisposeQuietlyAsync(NpgsqlTransaction transaction)
    {
        try
        {
            await transaction.DisposeAsync().ConfigureAwait(false);
        }
        catch (NpgsqlException)
        {
            // Rolling back on a connection that just failed fails too; closing the connection next ends it anyway.
        }
        catch (InvalidOperationException)
        {
            // The connection is already broken, so Npgsql considers the transaction over.
        }
    }

    /// <summary>PostgreSQL's side: text as UTF-8 <c>bytea</c>, SQLSTATEs and connection failures mapped.</summary>
    private sealed class Dialect : StoreDialect
    {
        public static readonly Dialect Instance = new();

        public override string Name => "PostgreSQL";

        public override void AddText(DbCommand command, string name, string? value) =>
            ((NpgsqlCommand)command).Parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Bytea)
            {
                Value = value is null ? DBNull.Value : StoreText.Encode(value),
            });

        public override string GetText(DbDataReader reader, int ordinal) =>
            StoreText.Decode(Name, reader.GetFieldValue<byte[]>(ordinal));

        public override (AuthorityStoreErrorKind Kind, string Detail) Classify(DbException exception)
        {
            switch (exception)
            {
                case PostgresException { SqlState: PostgresErrorCodes.UniqueViolation } unique:
                    return (AuthorityStoreErrorKind.Conflict, $"SQLSTATE {unique.SqlState}, constraint {unique.ConstraintName}");

                case PostgresException postgres:
                    // The message text names the failing object, never a bound value (values appear only in Detail,
                    // which Npgsql withholds unless Include Error Detail is set).
                    var kind = postgres.IsTransient || postgres.SqlState.StartsWith("08", StringComparison.Ordinal)
                        ? AuthorityStoreErrorKind.Unavailable
                        : AuthorityStoreErrorKind.Failed;
                    return (kind, $"SQLSTATE {postgres.SqlState}: {postgres.MessageText}");

                case NpgsqlException npgsql:
                    // Not an error from the server: the connection could not be made or broke (refused, timed out,
                    // reset). Only the cause's type is named: the provider's own text may carry the host.
                    var cause = npgsql.InnerException;
                    var unavailable = npgsql.IsTransient || cause is SocketException or IOException or TimeoutException;
                    return (unavailable ? AuthorityStoreErrorKind.Unavailable : AuthorityStoreErrorKind.Failed,
                        cause is null ? "connection failure" : cause.GetType().Name);

                default:
                    return (AuthorityStoreErrorKind.Failed, exception.GetType().Name);
            }
        }
    }
}
