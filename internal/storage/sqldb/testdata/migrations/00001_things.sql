-- +goose Up
CREATE TABLE things (
    id    TEXT PRIMARY KEY,
    n     BIGINT NOT NULL,
    flag  BOOLEAN NOT NULL DEFAULT FALSE
);

-- +goose Down
DROP TABLE things;
