using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace SecureChannels.Authority.Storage;

/// <summary>
/// The embedded, default <see cref="IAuthorityStore"/>: one SQLite database file in WAL mode, so readers never wait for
/// the writer.
/// </summary>
/// <remarks>
/// <para>
/// Writers are serialized twice. Inside one process a <see cref="SemaphoreSlim"/> shared by every store on the same
/// file queues them, so two writers here never meet SQLite's lock and never see <c>SQLITE_BUSY</c>. Across processes a
/// write transaction starts with <c>BEGIN IMMEDIATE</c>, which takes SQLite's write lock before any work is done;
/// another process's writer waits for it up to the busy timeout and then fails with
/// <see cref="AuthorityStoreErrorKind.Unavailable"/>. Read transactions are deferred: they take a snapshot at their
/// first read and block nobody.
/// </para>
/// <para>
/// The file's directory must exist: a path that cannot be opened is <see cref="AuthorityStoreErrorKind.Unavailable"/>,
/// not silently created somewhere. SQLite's default <c>synchronous=FULL</c> is kept because a committed revocation or
/// audit record must survive a power cut.
/// </para>
/// </remarks>
public sealed class SqliteAuthorityStore : IAuthorityStore
{
    /// <summary>How long a statement waits for another process's lock when none is given: 10 seconds.</summary>
    public static readonly TimeSpan DefaultBusyTimeout = TimeSpan.FromSeconds(10);

    // Keyed by the database file's full path, so two store instances on one file in one process share a queue too.
    // The few entries live as long as the process; a semaphore holds no OS handle until AvailableWaitHandle is used.
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> WriterLocks = new(StringComparer.Ordinal);

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS tickets (
            id BLOB NOT NULL PRIMARY KEY,
            secret_hash BLOB NOT NULL,
            principal TEXT NOT NULL,
            attributes BLOB NOT NULL,
            max_delegation_depth INTEGER NOT NULL,
            credential_lifetime_seconds INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            created_by TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            used_by TEXT,
            used_at INTEGER
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS credentials (
            id BLOB NOT NULL PRIMARY KEY,
            parent_id BLOB,
            issuer TEXT NOT NULL,
            subject TEXT NOT NULL,
            principal TEXT NOT NULL,
            attributes BLOB NOT NULL,
            not_before INTEGER NOT NULL,
            not_after INTEGER NOT NULL,
            chain BLOB NOT NULL,
            recorded_at INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS credentials_parent_id ON credentials (parent_id);
        CREATE INDEX IF NOT EXISTS credentials_subject ON credentials (subject);
        CREATE INDEX IF NOT EXISTS credentials_principal ON credentials (principal);
        CREATE TABLE IF NOT EXISTS documents (
            kind TEXT NOT NULL,
            resource TEXT NOT NULL,
            version INTEGER NOT NULL,
            encoded BLOB NOT NULL,
            published_at INTEGER NOT NULL,
            PRIMARY KEY (kind, resource, version)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS audit (
            sequence INTEGER NOT NULL PRIMARY KEY,
            at INTEGER NOT NULL,
            actor TEXT NOT NULL,
            principal TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            reason TEXT NOT NULL,
            previous_hash BLOB NOT NULL,
            hash BLOB NOT NULL,
            signature BLOB NOT NULL
        ) STRICT;
        """;

    private readonly string _connectionString;
    private readonly int _busyTimeoutMilliseconds;
    private readonly SemaphoreSlim _writerLock;
    private bool _disposed;

    /// <summary>A store in the SQLite file at <paramref name="databasePath"/> (created on first use; its directory must exist).</summary>
    /// <param name="databasePath">The database file.</param>
    /// <param name="busyTimeout">How long a statement waits for another process's lock; <see cref="DefaultBusyTimeout"/> when null.</param>
    /// <exception cref="ArgumentException">The path is empty, or names an in-memory database.</exception>
    public SqliteAuthorityStore(string databasePath, TimeSpan? busyTimeout = null)
        : this(new SqliteConnectionStringBuilder { DataSource = databasePath, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true }, busyTimeout, nameof(databasePath))
    {
    }

    private SqliteAuthorityStore(SqliteConnectionStringBuilder builder, TimeSpan? busyTimeout, string paramName)
    {
        var dataSource = builder.DataSource;
        if (string.IsNullOrWhiteSpace(dataSource) || dataSource == ":memory:" || builder.Mode == SqliteOpenMode.Memory)
        {
            // Each transaction opens its own connection, and a private in-memory database would vanish with it.
            throw new ArgumentException("The authority store needs a database file; an in-memory database does not outlive a connection.", paramName);
        }

        var timeout = busyTimeout ?? DefaultBusyTimeout;
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero, nameof(busyTimeout));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(timeout, TimeSpan.FromMilliseconds(int.MaxValue), nameof(busyTimeout));
        _busyTimeoutMilliseconds = (int)Math.Ceiling(timeout.TotalMilliseconds);

        // Microsoft.Data.Sqlite retries a busy statement for the command timeout on top of SQLite's own busy handler;
        // both get the same bound so the wait stays close to what was asked.
        builder.DefaultTimeout = (int)Math.Ceiling(timeout.TotalSeconds);
        _connectionString = builder.ToString();
        _writerLock = WriterLocks.GetOrAdd(Path.GetFullPath(dataSource), static _ => new SemaphoreSlim(1, 1));
    }

    /// <summary>A store from a Microsoft.Data.Sqlite connection string (its <c>Data Source</c> must be a file).</summary>
    /// <param name="connectionString">The connection string; its <c>Default Timeout</c> is replaced by <paramref name="busyTimeout"/>.</param>
    /// <param name="busyTimeout">How long a statement waits for another process's lock; <see cref="DefaultBusyTimeout"/> when null.</param>
    /// <exception cref="ArgumentException">The connection string is empty, malformed, or names an in-memory database.</exception>
    public static SqliteAuthorityStore FromConnectionString(string connectionString, TimeSpan? busyTimeout = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        return new SqliteAuthorityStore(new SqliteConnectionStringBuilder(connectionString), busyTimeout, nameof(connectionString));
    }

    /// <inheritdoc />
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _writerLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                var command = connection.CreateCommand();
                await using (command.ConfigureAwait(false))
                {
                    // Stored in the file: every later connection, from any process, opens it in WAL mode.
                    command.CommandText = "PRAGMA journal_mode = WAL";
                    await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);

                    var transaction = connection.BeginTransaction(deferred: false);
                    await using (transaction.ConfigureAwait(false))
                    {
                        command.Transaction = transaction;
                        command.CommandText = Schema;
                        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                    }
                }
            }
        }
        catch (SqliteException e)
        {
            throw Dialect.Instance.Translate("create the schema", e);
        }
        finally
        {
            _writerLock.Release();
        }
    }

    /// <inheritdoc />
    public async Task<IAuthorityTransaction> BeginAsync(bool write, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        SemaphoreSlim? held = null;
        if (write)
        {
            await _writerLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            held = _writerLock;
        }

        SqliteConnection? connection = null;
        var begun = false;
        try
        {
            connection = await OpenAsync(cancellationToken).ConfigureAwait(false);

            // IMMEDIATE takes SQLite's write lock now, so another process's writer waits here (busy timeout) instead of
            // failing half-way through its work when it first writes. Microsoft.Data.Sqlite has no asynchronous BEGIN;
            // its asynchronous methods all run synchronously anyway.
            var transaction = connection.BeginTransaction(deferred: !write);
            var begunTransaction = new DbAuthorityTransaction(Dialect.Instance, connection, transaction, write, held);
            begun = true;
            return begunTransaction;
        }
        catch (SqliteException e)
        {
            throw Dialect.Instance.Translate(write ? "begin a write transaction" : "begin a read transaction", e);
        }
        finally
        {
            if (!begun)
            {
                if (connection is not null)
                {
                    await connection.DisposeAsync().ConfigureAwait(false);
                }

                held?.Release();
            }
        }
    }

    /// <summary>Closes the pooled connections to the file (transactions still open keep theirs until disposed).</summary>
    public ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            using var connection = new SqliteConnection(_connectionString);
            SqliteConnection.ClearPool(connection);
        }

        return ValueTask.CompletedTask;
    }

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);

            // Set on every open: a pooled connection may come from before, but the call is cheap and keeps it true.
            var rc = raw.sqlite3_busy_timeout(connection.Handle, _busyTimeoutMilliseconds);
            if (rc != raw.SQLITE_OK)
            {
                throw new SqliteException($"SQLite refused busy_timeout ({rc.ToString(CultureInfo.InvariantCulture)}).", rc);
            }

            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>SQLite's side: text as TEXT (UTF-8, compared bytewise by the BINARY collation), result codes mapped.</summary>
    private sealed class Dialect : StoreDialect
    {
        public static readonly Dialect Instance = new();

        public override string Name => "SQLite";

        public override void AddText(DbCommand command, string name, string? value)
        {
            var parameter = ((SqliteCommand)command).Parameters.Add(name, SqliteType.Text);
            parameter.Value = (object?)value ?? DBNull.Value;
        }

        public override string GetText(DbDataReader reader, int ordinal) => reader.GetString(ordinal);

        public override (AuthorityStoreErrorKind Kind, string Detail) Classify(DbException exception)
        {
            if (exception is not SqliteException sqlite)
            {
                return (AuthorityStoreErrorKind.Failed, exception.GetType().Name);
            }

            var detail = string.Create(CultureInfo.InvariantCulture, $"SQLite error {sqlite.SqliteErrorCode}/{sqlite.SqliteExtendedErrorCode}");
            var kind = sqlite.SqliteErrorCode switch
            {
                raw.SQLITE_CONSTRAINT when sqlite.SqliteExtendedErrorCode is raw.SQLITE_CONSTRAINT_PRIMARYKEY or raw.SQLITE_CONSTRAINT_UNIQUE
                    => AuthorityStoreErrorKind.Conflict,

                // Cannot open the file (missing directory, a directory, no permission), another process holding the
                // lock past the busy timeout, or the disk failing under it: all worth a retry later.
                raw.SQLITE_CANTOPEN or raw.SQLITE_BUSY or raw.SQLITE_LOCKED or raw.SQLITE_IOERR => AuthorityStoreErrorKind.Unavailable,
                _ => AuthorityStoreErrorKind.Failed,
            };
            return (kind, detail);
        }

        public override void Discard(DbConnection connection) => SqliteConnection.ClearPool((SqliteConnection)connection);
    }
}
