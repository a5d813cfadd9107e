using System.Data.Common;

namespace SecureChannels.Authority.Storage;

/// <summary>
/// The one implementation of <see cref="IAuthorityTransaction"/> over an ADO.NET connection and transaction, shared by
/// the SQLite and PostgreSQL stores so both run the same statements. Each store begins the transaction (and takes its
/// writer lock) before handing it here; this class ends it and lets go of the lock exactly once.
/// </summary>
internal sealed class DbAuthorityTransaction : IAuthorityTransaction
{
    private const string TicketColumns =
        "id, secret_hash, principal, attributes, max_delegation_depth, credential_lifetime_seconds, expires_at, created_by, created_at, used_by, used_at";

    private const string CredentialColumns =
        "id, parent_id, issuer, subject, principal, attributes, not_before, not_after, chain, recorded_at";

    private const string DocumentColumns = "kind, resource, version, encoded, published_at";

    private const string AuditColumns =
        "sequence, at, actor, principal, action, target, reason, previous_hash, hash, signature";

    private readonly StoreDialect _dialect;
    private readonly DbConnection _connection;
    private readonly DbTransaction _transaction;
    private readonly bool _write;
    private SemaphoreSlim? _writerLock;
    private State _state;

    /// <summary>Takes ownership of an open connection with a begun transaction (and of a held in-process writer lock).</summary>
    public DbAuthorityTransaction(StoreDialect dialect, DbConnection connection, DbTransaction transaction, bool write, SemaphoreSlim? heldWriterLock)
    {
        _dialect = dialect;
        _connection = connection;
        _transaction = transaction;
        _write = write;
        _writerLock = heldWriterLock;
    }

    private enum State
    {
        Active,
        Committed,
        RolledBack,
        Disposed,
    }

    /// <inheritdoc />
    public Task InsertTicketAsync(TicketRecord ticket, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ticket);
        StoreText.Validate(ticket.Principal, nameof(ticket), nameof(ticket.Principal));
        StoreText.Validate(ticket.CreatedBy, nameof(ticket), nameof(ticket.CreatedBy));
        StoreText.Validate(ticket.UsedBy, nameof(ticket), nameof(ticket.UsedBy));
        return RunAsync("insert a ticket", changes: true, async (command, ct) =>
        {
            command.CommandText =
                $"INSERT INTO tickets ({TicketColumns}) VALUES (@id, @secret_hash, @principal, @attributes, @max_delegation_depth, " +
                "@credential_lifetime_seconds, @expires_at, @created_by, @created_at, @used_by, @used_at)";
            StoreDialect.AddBytes(command, "@id", ticket.Id);
            StoreDialect.AddBytes(command, "@secret_hash", ticket.SecretHash);
            _dialect.AddText(command, "@principal", ticket.Principal);
            StoreDialect.AddBytes(command, "@attributes", ticket.Attributes);
            StoreDialect.AddInt32(command, "@max_delegation_depth", ticket.MaxDelegationDepth);
            StoreDialect.AddInt64(command, "@credential_lifetime_seconds", ticket.CredentialLifetimeSeconds);
            StoreDialect.AddTime(command, "@expires_at", ticket.ExpiresAt);
            _dialect.AddText(command, "@created_by", ticket.CreatedBy);
            StoreDialect.AddTime(command, "@created_at", ticket.CreatedAt);
            _dialect.AddText(command, "@used_by", ticket.UsedBy);
            StoreDialect.AddTime(command, "@used_at", ticket.UsedAt);
            return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<TicketRecord?> FindTicketAsync(byte[] id, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        var found = await RunAsync("find a ticket", changes: false, (command, ct) =>
        {
            command.CommandText = $"SELECT {TicketColumns} FROM tickets WHERE id = @id";
            StoreDialect.AddBytes(command, "@id", id);
            return ReadAllAsync(command, ReadTicket, ct);
        }, cancellationToken).ConfigureAwait(false);
        return found.Count == 0 ? null : found[0];
    }

    /// <inheritdoc />
    public async Task<bool> MarkTicketUsedAsync(byte[] id, string usedBy, DateTimeOffset usedAt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(usedBy);
        StoreText.Validate(usedBy, nameof(usedBy), nameof(usedBy));
        var changed = await RunAsync("mark a ticket used", changes: true, (command, ct) =>
        {
            // The condition is the whole guarantee that a ticket works once: of two racing transactions only the one
            // that still finds used_by NULL changes the row (PostgreSQL re-checks it after the other's commit).
            command.CommandText = "UPDATE tickets SET used_by = @used_by, used_at = @used_at WHERE id = @id AND used_by IS NULL";
            _dialect.AddText(command, "@used_by", usedBy);
            StoreDialect.AddTime(command, "@used_at", usedAt);
            StoreDialect.AddBytes(command, "@id", id);
            return command.ExecuteNonQueryAsync(ct);
        }, cancellationToken).ConfigureAwait(false);
        return changed == 1;
    }

    /// <inheritdoc />
    public Task InsertCredentialAsync(CredentialRecord credential, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(credential);
        StoreText.Validate(credential.Issuer, nameof(credential), nameof(credential.Issuer));
        StoreText.Validate(credential.Subject, nameof(credential), nameof(credential.Subject));
        StoreText.Validate(credential.Principal, nameof(credential), nameof(credential.Principal));
        return RunAsync("insert a credential", changes: true, (command, ct) =>
        {
            command.CommandText =
                $"INSERT INTO credentials ({CredentialColumns}) VALUES (@id, @parent_id, @issuer, @subject, @principal, @attributes, " +
                "@not_before, @not_after, @chain, @recorded_at)";
            StoreDialect.AddBytes(command, "@id", credential.Id);
            StoreDialect.AddBytes(command, "@parent_id", credential.ParentId);
            _dialect.AddText(command, "@issuer", credential.Issuer);
            _dialect.AddText(command, "@subject", credential.Subject);
            _dialect.AddText(command, "@principal", credential.Principal);
            StoreDialect.AddBytes(command, "@attributes", credential.Attributes);
            StoreDialect.AddTime(command, "@not_before", credential.NotBefore);
            StoreDialect.AddTime(command, "@not_after", credential.NotAfter);
            StoreDialect.AddBytes(command, "@chain", credential.Chain);
            StoreDialect.AddTime(command, "@recorded_at", credential.RecordedAt);
            return command.ExecuteNonQueryAsync(ct);
        }, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<CredentialRecord?> FindCredentialAsync(byte[] id, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        var found = await RunAsync("find a credential", changes: false, (command, ct) =>
        {
            command.CommandText = $"SELECT {CredentialColumns} FROM credentials WHERE id = @id";
            StoreDialect.AddBytes(command, "@id", id);
            return ReadAllAsync(command, ReadCredential, ct);
        }, cancellationToken).ConfigureAwait(false);
        return found.Count == 0 ? null : found[0];
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<CredentialRecord>> FindChildrenAsync(byte[] parentId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(parentId);
        return RunAsync("find child credentials", changes: false, (command, ct) =>
        {
            command.CommandText = $"SELECT {CredentialColumns} FROM credentials WHERE parent_id = @parent_id ORDER BY id";
            StoreDialect.AddBytes(command, "@parent_id", parentId);
            return ReadAllAsync(command, ReadCredential, ct);
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<CredentialRecord>> FindByPrincipalAsync(string principal, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(principal);
        StoreText.Validate(principal, nameof(principal), nameof(principal));
        return RunAsync("find credentials by principal", changes: false, (command, ct) =>
        {
            // Stored bounds are whole milliseconds, so comparing them with 'at' floored to the millisecond decides
            // not_before <= at < not_after exactly as the full-precision comparison would.
            command.CommandText =
                $"SELECT {CredentialColumns} FROM credentials WHERE principal = @principal AND not_before <= @at AND @at < not_after ORDER BY id";
            _dialect.AddText(command, "@principal", principal);
            StoreDialect.AddTime(command, "@at", at);
            return ReadAllAsync(command, ReadCredential, ct);
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<CredentialRecord>> FindBySubjectAsync(string subject, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(subject);
        StoreText.Validate(subject, nameof(subject), nameof(subject));
        return RunAsync("find credentials by subject", changes: false, (command, ct) =>
        {
            command.CommandText = $"SELECT {CredentialColumns} FROM credentials WHERE subject = @subject ORDER BY id";
            _dialect.AddText(command, "@subject", subject);
            return ReadAllAsync(command, ReadCredential, ct);
        }, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<StoredDocument?> LatestDocumentAsync(string kind, string resource, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(resource);
        StoreText.Validate(kind, nameof(kind), nameof(kind));
        StoreText.Validate(resource, nameof(resource), nameof(resource));
        var found = await RunAsync("read the latest document", changes: false, (command, ct) =>
        {
            command.CommandText =
                $"SELECT {DocumentColumns} FROM documents WHERE kind = @kind AND resource = @resource ORDER BY version DESC LIMIT 1";
            _dialect.AddText(command, "@kind", kind);
            _dialect.AddText(command, "@resource", resource);
            return ReadAllAsync(command, ReadDocument, ct);
        }, cancellationToken).ConfigureAwait(false);
        return found.Count == 0 ? null : found[0];
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<StoredDocument>> LatestDocumentsAsync(string kind, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(kind);
        StoreText.Validate(kind, nameof(kind), nameof(kind));
        return RunAsync("read the latest documents", changes: false, (command, ct) =>
        {
            command.CommandText =
                "SELECT d.kind, d.resource, d.version, d.encoded, d.published_at FROM documents d " +
                "JOIN (SELECT resource, MAX(version) AS version FROM documents WHERE kind = @kind GROUP BY resource) latest " +
                "ON d.resource = latest.resource AND d.version = latest.version " +
                "WHERE d.kind = @kind ORDER BY d.resource";
            _dialect.AddText(command, "@kind", kind);
            return ReadAllAsync(command, ReadDocument, ct);
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task InsertDocumentAsync(StoredDocument document, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(document);
        StoreText.Validate(document.Kind, nameof(document), nameof(document.Kind));
        StoreText.Validate(document.Resource, nameof(document), nameof(document.Resource));
        return RunAsync("insert a document", changes: true, (command, ct) =>
        {
            command.CommandText = $"INSERT INTO documents ({DocumentColumns}) VALUES (@kind, @resource, @version, @encoded, @published_at)";
            _dialect.AddText(command, "@kind", document.Kind);
            _dialect.AddText(command, "@resource", document.Resource);
            StoreDialect.AddInt64(command, "@version", document.Version);
            StoreDialect.AddBytes(command, "@encoded", document.Encoded);
            StoreDialect.AddTime(command, "@published_at", document.PublishedAt);
            return command.ExecuteNonQueryAsync(ct);
        }, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<AuditRecord?> LastAuditAsync(CancellationToken cancellationToken = default)
    {
        var found = await RunAsync("read the last audit record", changes: false, (command, ct) =>
        {
            command.CommandText = $"SELECT {AuditColumns} FROM audit ORDER BY sequence DESC LIMIT 1";
            return ReadAllAsync(command, ReadAudit, ct);
        }, cancellationToken).ConfigureAwait(false);
        return found.Count == 0 ? null : found[0];
    }

    /// <inheritdoc />
    public Task AppendAuditAsync(AuditRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        StoreText.Validate(record.Actor, nameof(record), nameof(record.Actor));
        StoreText.Validate(record.Principal, nameof(record), nameof(record.Principal));
        StoreText.Validate(record.Action, nameof(record), nameof(record.Action));
        StoreText.Validate(record.Target, nameof(record), nameof(record.Target));
        StoreText.Validate(record.Reason, nameof(record), nameof(record.Reason));
        return RunAsync("append an audit record", changes: true, async (command, ct) =>
        {
            // The primary key stops a sequence written twice; this check stops a gap. Both read and write happen under
            // the writer lock, so the last sequence cannot move in between.
            command.CommandText = "SELECT MAX(sequence) FROM audit";
            var last = await command.ExecuteScalarAsync(ct).ConfigureAwait(false);
            var expected = (last is null or DBNull ? 0 : Convert.ToInt64(last, System.Globalization.CultureInfo.InvariantCulture)) + 1;
            if (record.Sequence != expected)
            {
                throw new AuthorityStoreException(
                    AuthorityStoreErrorKind.Conflict,
                    $"{_dialect.Name} authority store: append an audit record failed: its sequence is {record.Sequence}, the next one is {expected}.");
            }

            command.CommandText =
                $"INSERT INTO audit ({AuditColumns}) VALUES (@sequence, @at, @actor, @principal, @action, @target, @reason, " +
                "@previous_hash, @hash, @signature)";
            StoreDialect.AddInt64(command, "@sequence", record.Sequence);
            StoreDialect.AddTime(command, "@at", record.At);
            _dialect.AddText(command, "@actor", record.Actor);
            _dialect.AddText(command, "@principal", record.Principal);
            _dialect.AddText(command, "@action", record.Action);
            _dialect.AddText(command, "@target", record.Target);
            _dialect.AddText(command, "@reason", record.Reason);
            StoreDialect.AddBytes(command, "@previous_hash", record.PreviousHash);
            StoreDialect.AddBytes(command, "@hash", record.Hash);
            StoreDialect.AddBytes(command, "@signature", record.Signature);
            return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<AuditRecord>> ReadAuditAsync(long fromSequence, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        return RunAsync("read audit records", changes: false, (command, ct) =>
        {
            command.CommandText = $"SELECT {AuditColumns} FROM audit WHERE sequence >= @from ORDER BY sequence LIMIT @limit";
            StoreDialect.AddInt64(command, "@from", fromSequence);
            StoreDialect.AddInt64(command, "@limit", limit);
            return ReadAllAsync(command, ReadAudit, ct);
        }, cancellationToken);
    }

    /// <inheritdoc />
    public async Task CommitAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfUnusable(changes: false);
        var committed = false;
        try
        {
            cancellationToken.ThrowIfCancellationRequested();

            // Not cancellable once sent: a COMMIT cut short leaves the caller unable to tell whether it happened.
            await _transaction.CommitAsync(CancellationToken.None).ConfigureAwait(false);
            committed = true;
            _state = State.Committed;
        }
        catch (DbException e)
        {
            throw _dialect.Translate("commit", e);
        }
        finally
        {
            if (committed)
            {
                await ReleaseAsync().ConfigureAwait(false);
            }
            else
            {
                await AbandonAsync().ConfigureAwait(false);
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_state == State.Disposed)
        {
            return;
        }

        await AbandonAsync().ConfigureAwait(false);
        _state = State.Disposed;
    }

    private static async Task<IReadOnlyList<T>> ReadAllAsync<T>(DbCommand command, Func<DbDataReader, T> read, CancellationToken cancellationToken)
    {
        var rows = new List<T>();
        var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                rows.Add(read(reader));
            }
        }

        return rows;
    }

    private TicketRecord ReadTicket(DbDataReader r) => new(
        Id: r.GetFieldValue<byte[]>(0),
        SecretHash: r.GetFieldValue<byte[]>(1),
        Principal: _dialect.GetText(r, 2),
        Attributes: r.GetFieldValue<byte[]>(3),
        MaxDelegationDepth: r.GetInt32(4),
        CredentialLifetimeSeconds: r.GetInt64(5),
        ExpiresAt: StoreDialect.GetTime(r, 6),
        CreatedBy: _dialect.GetText(r, 7),
        CreatedAt: StoreDialect.GetTime(r, 8),
        UsedBy: r.IsDBNull(9) ? null : _dialect.GetText(r, 9),
        UsedAt: r.IsDBNull(10) ? null : StoreDialect.GetTime(r, 10));

    private CredentialRecord ReadCredential(DbDataReader r) => new(
        Id: r.GetFieldValue<byte[]>(0),
        ParentId: r.IsDBNull(1) ? null : r.GetFieldValue<byte[]>(1),
        Issuer: _dialect.GetText(r, 2),
        Subject: _dialect.GetText(r, 3),
        Principal: _dialect.GetText(r, 4),
        Attributes: r.GetFieldValue<byte[]>(5),
        NotBefore: StoreDialect.GetTime(r, 6),
        NotAfter: StoreDialect.GetTime(r, 7),
        Chain: r.GetFieldValue<byte[]>(8),
        RecordedAt: StoreDialect.GetTime(r, 9));

    private StoredDocument ReadDocument(DbDataReader r) => new(
        Kind: _dialect.GetText(r, 0),
        Resource: _dialect.GetText(r, 1),
        Version: r.GetInt64(2),
        Encoded: r.GetFieldValue<byte[]>(3),
        PublishedAt: StoreDialect.GetTime(r, 4));

    private AuditRecord ReadAudit(DbDataReader r) => new(
        Sequence: r.GetInt64(0),
        At: StoreDialect.GetTime(r, 1),
        Actor: _dialect.GetText(r, 2),
        Principal: _dialect.GetText(r, 3),
        Action: _dialect.GetText(r, 4),
        Target: _dialect.GetText(r, 5),
        Reason: _dialect.GetText(r, 6),
        PreviousHash: r.GetFieldValue<byte[]>(7),
        Hash: r.GetFieldValue<byte[]>(8),
        Signature: r.GetFieldValue<byte[]>(9));

    /// <summary>
    /// Runs one piece of work on a fresh command in this transaction. Whatever it throws leaves the transaction rolled
    /// back and the writer lock released before the exception reaches the caller, the same on both databases
    /// (PostgreSQL aborts the transaction on any error anyway; SQLite would keep it half-done).
    /// </summary>
    private async Task<T> RunAsync<T>(string operation, bool changes, Func<DbCommand, CancellationToken, Task<T>> work, CancellationToken cancellationToken)
    {
        ThrowIfUnusable(changes);
        var succeeded = false;
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            var command = _connection.CreateCommand();
            await using (command.ConfigureAwait(false))
            {
                command.Transaction = _transaction;
                var result = await work(command, cancellationToken).ConfigureAwait(false);
                succeeded = true;
                return result;
            }
        }
        catch (DbException e)
        {
            throw _dialect.Translate(operation, e);
        }
        finally
        {
            if (!succeeded)
            {
                await AbandonAsync().ConfigureAwait(false);
            }
        }
    }

    private void ThrowIfUnusable(bool changes)
    {
        ObjectDisposedException.ThrowIf(_state == State.Disposed, this);
        if (_state == State.Committed)
        {
            throw new InvalidOperationException("The transaction is committed; begin a new one.");
        }

        if (_state == State.RolledBack)
        {
            throw new InvalidOperationException("The transaction was rolled back after a failure; dispose it and begin a new one.");
        }

        if (changes && !_write)
        {
            throw new InvalidOperationException("This is a read transaction; changes need a transaction begun with write: true.");
        }
    }

    /// <summary>Rolls back an active transaction (best effort) and lets go of everything it holds.</summary>
    private async Task AbandonAsync()
    {
        if (_state != State.Active)
        {
            return;
        }

        _state = State.RolledBack;
        try
        {
            await _transaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (DbException)
        {
            // The connection is most likely gone, and the database drops a dead connection's transaction with it; the
            // failure that brought us here is the one worth reporting.
            _dialect.Discard(_connection);
        }
        catch (InvalidOperationException)
        {
            // The provider already considers the transaction over (a broken connection); nothing is left to undo.
            _dialect.Discard(_connection);
        }

        await ReleaseAsync().ConfigureAwait(false);
    }

    private async Task ReleaseAsync()
    {
        try
        {
            await _transaction.DisposeAsync().ConfigureAwait(false);
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Exchange(ref _writerLock, null)?.Release();
        }
    }
}
