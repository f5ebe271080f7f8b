#pragma once
/// @file
/// @brief choreo::kafka: events between processes over Apache Kafka, through librdkafka.
/// Link choreo::kafka.

#include <choreo/kafka/admin.hpp>
#include <choreo/kafka/consumer.hpp>
#include <choreo/kafka/errors.hpp>
#include <choreo/kafka/options.hpp>
#include <choreo/kafka/producer.hpp>
